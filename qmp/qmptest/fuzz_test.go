package qmptest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// FuzzServer feeds arbitrary client input to a server over a pipe: the
// server must never panic or hang, and everything it writes must be QMP
// messages (JSON objects, one per line).
func FuzzServer(f *testing.F) {
	for _, seed := range []string{
		`{"execute": "qmp_capabilities"}{"execute": "query-status", "id": 1}`,
		`{"execute": "qmp_capabilities"}` + "\n" + `{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}, "id": [1]}`,
		`{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}{"exec-oob": "stop", "id": 2}{"execute": "cont"}`,
		`{"execute": "qmp_capabilities"}{"execute": "add-fd", "arguments": {"fdset-id": "x"}}{"execute": "getfd", "arguments": {"fdname": 1}}`,
		`{"execute": "qmp_capabilities"}{"execute": "query-name", "arguments": {"a": 1, "b": 2}}}}{"execute": "system_powerdown"}`,
		`{"execute": "qmp_capabilities"}{"execute": "quit"}{"execute": "query-status"}`,
		"\xff\xfe{[[[[",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		s := qmptest.NewServer(qmptest.Config{SchemaSize: 1000})
		defer s.Close()
		s.Handle("echo", qmptest.Echo)
		client, server := net.Pipe()
		defer client.Close()
		if err := s.ServeConn(server); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			_, _ = client.Write(input)
			// Give the server time to answer, then hang up.
			<-ctx.Done()
		}()
		r := bufio.NewReader(client)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				break // the end, or a pause after the last answer
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(line, &obj); err != nil {
				t.Fatalf("server wrote %q: %v", line, err)
			}
			if r.Buffered() == 0 {
				// Stop once nothing more arrives for a while.
				_ = client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			}
		}
		cancel()
	})
}
