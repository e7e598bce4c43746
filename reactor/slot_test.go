package reactor

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/action"
)

// Next and takeSlot copy the slot field by field (see takeSlot): every
// field of Response must come through, including any field added later.
func TestSlotDeliveryCopiesEveryField(t *testing.T) {
	var want Response
	v := reflect.ValueOf(&want).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i + 1))
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("Response.%s: a %s field this test cannot fill; teach it", v.Type().Field(i).Name, f.Kind())
		}
	}
	for _, name := range []string{"Next", "takeSlot"} {
		c := NewClientMachine(ClientMachineConfig{})
		c.slot, c.slotFull = want, true
		var got action.Action[Response]
		if name == "Next" {
			got = c.Next()
		} else {
			c.takeSlot(&got)
		}
		require.Equal(t, action.DeliverValue(want), got, name)
		require.False(t, c.slotFull, name)
	}
}
