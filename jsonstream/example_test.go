package jsonstream_test

import (
	"errors"
	"fmt"

	"github.com/wirereactor/wirereactor/jsonstream"
)

// QMP arrives as a JSON stream: messages split across reads, glued together,
// pretty-printed. Garbage costs one error, then decoding resumes at the next
// object, as QEMU does.
func ExampleDecoder() {
	d := jsonstream.NewDecoder(jsonstream.Config{MaxMessageSize: 1 << 20})
	reads := []string{
		`{"execute": "qmp_capa`,
		"bilities\"}\r\n{\"execute\":\n  \"stop\"}",
		` junk {"execute": "cont", "id": 1e3}`,
	}
	for _, r := range reads {
		d.Feed([]byte(r))
		for {
			msg, err := d.Next()
			if errors.Is(err, jsonstream.ErrSyntax) {
				fmt.Println("error:", err)
				continue // recoverable
			}
			if err != nil {
				fmt.Println("fatal:", err)
				return
			}
			if msg == nil {
				break // need more input; the read buffer may be reused now
			}
			fmt.Printf("message: %s\n", msg)
		}
	}
	// Output:
	// message: {"execute": "qmp_capabilities"}
	// message: {"execute":
	//   "stop"}
	// error: jsonstream: json syntax error at offset 55: invalid character 'j' looking for a value
	// message: {"execute": "cont", "id": 1e3}
}
