package qmp

import (
	"strconv"
	"testing"

	"github.com/wirereactor/wirereactor/action"
)

// BenchmarkRoundTrip measures one execute → reply round trip through both
// machines: the client encodes the command, the server parses and delivers
// it, answers, and the client correlates and delivers the reply.
func BenchmarkRoundTrip(b *testing.B) {
	c, s := pairedMachines(b)
	result := []byte(`{"status": "running", "singlestep": false, "running": true}`)
	b.ReportAllocs()
	for b.Loop() {
		id, err := c.Execute("query-status", nil)
		if err != nil {
			b.Fatal(err)
		}
		a := c.Next()
		if a.Kind != action.KindSend {
			b.Fatal(a)
		}
		s.Feed(a.Bytes)
		cmd := s.Next()
		if cmd.Kind != action.KindDeliver {
			b.Fatal(cmd)
		}
		if s.Next().Kind != action.KindWantMore {
			b.Fatal("server not idle")
		}
		_ = s.Return(cmd.Value.ID, result)
		out := s.Next()
		c.Feed(out.Bytes)
		r := c.Next()
		if r.Kind != action.KindDeliver || r.Value.ID != id {
			b.Fatal(r)
		}
		if c.Next().Kind != action.KindWantMore || s.Next().Kind != action.KindWantMore {
			b.Fatal("not idle")
		}
	}
}

// pairedMachines returns a client and a server that finished the handshake.
func pairedMachines(b *testing.B) (*ClientMachine, *ServerMachine) {
	c := NewClientMachine(ClientMachineConfig{})
	s := NewServerMachine(ServerMachineConfig{})
	for range 4 {
		for a := s.Next(); a.Kind != action.KindWantMore; a = s.Next() {
			if a.Kind == action.KindSend {
				c.Feed(append([]byte(nil), a.Bytes...))
			}
		}
		for a := c.Next(); a.Kind != action.KindWantMore; a = c.Next() {
			if a.Kind == action.KindSend {
				s.Feed(append([]byte(nil), a.Bytes...))
			}
		}
	}
	if c.State() != ClientStateRunning || !s.Negotiated() {
		b.Fatalf("handshake did not finish: client %v", c.State())
	}
	return c, s
}

// BenchmarkClientReply measures the client side alone: correlating a reply
// and delivering it (one copy of the message).
func BenchmarkClientReply(b *testing.B) {
	c := NewClientMachine(ClientMachineConfig{SkipGreeting: true, SkipNegotiation: true})
	c.Next() // ready
	var msg []byte
	b.ReportAllocs()
	for b.Loop() {
		id, _ := c.Execute("query-status", nil)
		c.Next() // send
		msg = append(msg[:0], `{"return": {"status": "running", "singlestep": false, "running": true}, "id": `...)
		msg = strconv.AppendUint(msg, id, 10)
		msg = append(msg, "}\r\n"...)
		c.Feed(msg)
		if a := c.Next(); a.Kind != action.KindDeliver {
			b.Fatal(a)
		}
		c.Next()
	}
}

// BenchmarkServerParse measures the server parsing and delivering commands,
// 64 per read.
func BenchmarkServerParse(b *testing.B) {
	_, s := pairedMachines(b)
	var batch []byte
	for i := range 64 {
		batch = append(batch, `{"execute": "device_add", "arguments": {"driver": "virtio-net-pci", "id": "net0", "netdev": "hostnet0"}, "id": `...)
		batch = strconv.AppendInt(batch, int64(i), 10)
		batch = append(batch, "}\n"...)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		s.Feed(batch)
		n := 0
		for a := s.Next(); a.Kind != action.KindWantMore; a = s.Next() {
			if a.Kind != action.KindDeliver {
				b.Fatal(a)
			}
			n++
		}
		if n != 64 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/command")
}
