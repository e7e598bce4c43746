package qmptest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzQEMU72 runs lines of "command {arguments}" through the handlers of
// HandleQEMU72, keeping their state across lines: no panic, every result
// encodes as JSON, and every failure is an error reply with a class and a
// description.
func FuzzQEMU72(f *testing.F) {
	for _, seed := range []string{
		`blockdev-add {"driver": "null-co", "node-name": "n0"}` + "\n" + `transaction {"actions": [{"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "b"}}, {"type": "abort"}]}`,
		`blockdev-add {"driver": "raw", "file": {"driver": "null-co"}, "node-name": 1}`,
		`object-add {"qom-type": "memory-backend-ram", "id": "m", "size": 1}` + "\n" + `qom-get {"path": "/objects/m", "property": "size"}`,
		`device_add {"driver": "usb-tablet", "id": "t"}` + "\n" + `device_del {"id": "t"}`,
		`transaction {"actions": 5}`,
		`query-kvm {"x": [}`,
		`human-monitor-command {"command-line": "help"}`,
		`blockdev-add {"driver": ["x"]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		s := NewServer(Config{})
		defer s.Close()
		s.HandleQEMU72()
		for _, line := range strings.Split(input, "\n") {
			name, args, _ := strings.Cut(line, " ")
			h := s.handler(name)
			if h == nil {
				continue
			}
			var raw json.RawMessage
			if args != "" {
				raw = json.RawMessage(args)
			}
			res, err := h(context.Background(), raw)
			var qerr *Error
			switch {
			case err == nil:
				if _, err := encodeResult(res); err != nil {
					t.Fatalf("%s %s: result %v does not encode: %v", name, args, res, err)
				}
			case errors.As(err, &qerr):
				if qerr.Class == "" || qerr.Desc == "" {
					t.Fatalf("%s %s: empty error %+v", name, args, qerr)
				}
			case errors.Is(err, errNotInHandler), errors.Is(err, ErrNoReply):
				// Emit and friends outside a connection; HMP quit.
			default:
				t.Fatalf("%s %s: unexpected error %v", name, args, err)
			}
		}
	})
}
