package harness

import (
	"errors"
	"net"

	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// statusReply is what qmptest (and an idle QEMU) answers to query-status.
const statusReply = `{"status": "running", "singlestep": false, "running": true}`

// qmpServer serves qmptest (many clients at once) on ln in the background.
type qmpServer struct {
	s    *qmptest.Server
	done chan error
}

func serveQMP(ln net.Listener) *qmpServer {
	q := &qmpServer{s: qmptest.NewServer(qmptest.Config{MultiClient: true}), done: make(chan error, 1)}
	go func() { q.done <- q.s.Serve(ln) }()
	return q
}

// Close stops the server and joins every goroutine it started.
func (q *qmpServer) Close() error {
	err := q.s.Close()
	if serr := <-q.done; !errors.Is(serr, qmptest.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
