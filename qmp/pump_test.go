package qmp

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wirereactor/wirereactor/action"
)

var (
	_ action.Machine[Received] = (*ClientMachine)(nil)
	_ action.Machine[Command]  = (*ServerMachine)(nil)
)

// pump moves bytes between a client and a server machine in random-sized
// pieces until both are idle. The server application answers the commands it
// holds in a random order (as oob replies overtake normal ones) and emits an
// event before some replies.
type pump struct {
	t        *testing.T
	rng      *rand.Rand
	c        *ClientMachine
	s        *ServerMachine
	toServer []byte
	toClient []byte
	held     []Command
	got      []Received
}

func (p *pump) run() {
	for range 10000 {
		progressed := false
		for a := p.c.Next(); a.Kind != action.WantMore; a = p.c.Next() {
			require.NotEqual(p.t, action.Error, a.Kind, "client: %v", a.Err)
			if a.Kind == action.Send {
				p.toServer = append(p.toServer, a.Bytes...)
			} else {
				p.got = append(p.got, a.Value)
			}
			progressed = true
		}
		for a := p.s.Next(); a.Kind != action.WantMore; a = p.s.Next() {
			require.NotEqual(p.t, action.Error, a.Kind, "server: %v", a.Err)
			if a.Kind == action.Send {
				p.toClient = append(p.toClient, a.Bytes...)
			} else {
				p.held = append(p.held, a.Value)
			}
			progressed = true
		}
		if len(p.held) > 0 && p.rng.IntN(3) == 0 {
			i := p.rng.IntN(len(p.held))
			cmd := p.held[i]
			p.held = append(p.held[:i], p.held[i+1:]...)
			if p.rng.IntN(4) == 0 {
				_, err := p.s.SendEvent("TICK", []byte(fmt.Sprintf(`{"for": %s}`, cmd.ID)), time.Unix(1, 0))
				require.NoError(p.t, err)
			}
			if cmd.Name == "fail" {
				require.NoError(p.t, p.s.ReturnError(cmd.ID, "GenericError", "failed "+string(cmd.Arguments)))
			} else {
				require.NoError(p.t, p.s.Return(cmd.ID, cmd.Arguments))
			}
			progressed = true
		}
		if n := len(p.toServer); n > 0 {
			k := 1 + p.rng.IntN(n)
			p.s.Feed(append([]byte(nil), p.toServer[:k]...))
			p.toServer = p.toServer[k:]
			progressed = true
		}
		if n := len(p.toClient); n > 0 {
			k := 1 + p.rng.IntN(n)
			p.c.Feed(append([]byte(nil), p.toClient[:k]...))
			p.toClient = p.toClient[k:]
			progressed = true
		}
		if !progressed && len(p.held) == 0 {
			return
		}
	}
	p.t.Fatal("pump never settled")
}

func TestPumpPipelinedCommandsEachReplyToItsCaller(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := &pump{t: t, rng: rand.New(rand.NewPCG(seed, 1)),
				c: NewClientMachine(ClientConfig{}), s: NewServerMachine(ServerConfig{})}
			want := map[uint64]string{}
			for i := range 50 {
				name := "echo"
				if i%7 == 0 {
					name = "fail"
				}
				args := fmt.Sprintf(`{"n": %d, "s": "%x"}`, i, p.rng.Uint64())
				id, err := p.c.Execute(name, []byte(args))
				require.NoError(t, err)
				want[id] = name + " " + args
				if i == 10 {
					p.run() // half now, half later
				}
			}
			p.run()
			replies, events := 0, 0
			for _, r := range p.got {
				switch r.Kind {
				case KindReply:
					replies++
					w, ok := want[r.ID]
					require.True(t, ok, "reply with id %d", r.ID)
					delete(want, r.ID)
					if r.Response.Error != nil {
						require.Equal(t, w, "fail "+r.Response.Error.Desc[len("failed "):])
					} else {
						require.Equal(t, w, "echo "+string(r.Response.Return))
					}
					require.True(t, SameID(r.Response.ID, []byte(fmt.Sprint(r.ID))))
				case KindEvent:
					events++
					require.Equal(t, "TICK", r.Event.Name)
				}
			}
			require.Equal(t, 50, replies)
			require.Empty(t, want)
			require.Zero(t, p.c.Pending())
			require.Zero(t, p.c.Dropped())
		})
	}
}
