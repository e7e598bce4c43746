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
		sent, got, err := drain[Received](p.t, p.c)
		require.NoError(p.t, err, "client")
		p.toServer, p.got = append(p.toServer, sent...), append(p.got, got...)
		progressed = progressed || len(sent) > 0 || len(got) > 0
		sent, cmds, err := drain[Command](p.t, p.s)
		require.NoError(p.t, err, "server")
		p.toClient, p.held = append(p.toClient, sent...), append(p.held, cmds...)
		progressed = progressed || len(sent) > 0 || len(cmds) > 0
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
		progressed = p.feedSome(p.s, &p.toServer) || progressed
		progressed = p.feedSome(p.c, &p.toClient) || progressed
		if !progressed && len(p.held) == 0 {
			return
		}
	}
	p.t.Fatal("pump never settled")
}

// feedSome feeds m a random-sized copy of the start of *pending, drops that
// from *pending and reports whether there was anything to feed.
func (p *pump) feedSome(m interface{ Feed([]byte) }, pending *[]byte) bool {
	n := len(*pending)
	if n == 0 {
		return false
	}
	k := 1 + p.rng.IntN(n)
	m.Feed(append([]byte(nil), (*pending)[:k]...))
	*pending = (*pending)[k:]
	return true
}

func TestPumpPipelinedCommandsEachReplyToItsCaller(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			p := &pump{t: t, rng: rand.New(rand.NewPCG(seed, 1)),
				c: NewClientMachine(ClientMachineConfig{}), s: NewServerMachine(ServerMachineConfig{})}
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
				case ReceivedKindReply:
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
				case ReceivedKindEvent:
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
