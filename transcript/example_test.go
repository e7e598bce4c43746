package transcript_test

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/wirereactor/wirereactor/action/actiontest"
	"github.com/wirereactor/wirereactor/qmp"
	"github.com/wirereactor/wirereactor/transcript"
)

// A user's automation, unit-tested against a recorded QEMU session with no
// QEMU and no socket: the transcript's server side is replayed to the QMP
// client machine through the test kit's pump.
func ExampleNewQMPPeer() {
	f, _ := os.Open("testdata/stop-cont.jsonl")
	defer f.Close()
	tr, _ := transcript.Read(f)
	peer, _ := transcript.NewQMPPeer(tr, transcript.PeerConfig{})

	c := qmp.NewClientMachine(qmp.ClientMachineConfig{})
	c.Execute("stop", nil)
	c.Execute("query-status", nil)
	c.Execute("cont", nil)
	got, _ := actiontest.Pump(c, peer)
	for _, r := range got.Delivered() {
		switch r.Kind {
		case qmp.ReceivedKindEvent:
			fmt.Println("event", r.Event.Name)
		case qmp.ReceivedKindReply:
			fmt.Printf("reply to #%d: %s\n", r.ID, r.Response.Return)
		}
	}
	fmt.Println("replayed whole:", peer.Done() == nil)
	// Output:
	// event STOP
	// reply to #1: {}
	// reply to #2: {"status": "paused", "singlestep": false, "running": false}
	// event RESUME
	// reply to #3: {}
	// replayed whole: true
}

// Recording: the Recorder's methods are the transport's hooks, so any
// session records with cfg.OnInbound, cfg.OnOutbound, cfg.OnEnd =
// rec.Inbound, rec.Outbound, rec.End. Here they are called by hand, with a
// fake clock.
func ExampleRecorder() {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	rec, _ := transcript.NewRecorder(&buf, transcript.RecorderConfig{
		Header:    transcript.Header{Protocol: "qmp"},
		SplitJSON: true,
		Now:       func() time.Time { now = now.Add(time.Millisecond); return now },
	})
	rec.Inbound([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\r\n"))
	rec.Outbound([]byte(`{"execute": "qmp_capabilities", "id": 1}`))
	rec.Inbound([]byte(`{"return": {}, "id": 1}` + "\r\n"))
	rec.End(nil)
	fmt.Print(buf.String())
	// Output:
	// {"transcript":1,"protocol":"qmp","side":"client"}
	// {"conn":1,"t":0.001,"ev":"open"}
	// {"conn":1,"t":0.001,"ev":"recv","text":"{\"QMP\": {\"version\": {}, \"capabilities\": []}}"}
	// {"conn":1,"t":0.002,"ev":"send","text":"{\"execute\": \"qmp_capabilities\", \"id\": 1}"}
	// {"conn":1,"t":0.003,"ev":"recv","text":"{\"return\": {}, \"id\": 1}"}
	// {"conn":1,"t":0.004,"ev":"close"}
}
