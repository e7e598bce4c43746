package qmpconn

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

func TestConcurrentExecutesGetTheirOwnReplies(t *testing.T) {
	// Registered first, so it runs after the server's cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	path := strings.TrimPrefix(qmptest.StartUnix(t, qmptest.Config{Name: "vm1"}).Addr(), "unix:")
	ctx := context.Background()
	c, err := Dial(ctx, "unix", path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				// Two commands with different replies: a reply handed to
				// the wrong caller shows.
				cmd, want := "query-status", `{"status": "running", "singlestep": false, "running": true}`
				if (g+i)%2 == 1 {
					cmd, want = "query-name", `{"name": "vm1"}`
				}
				r, err := c.Execute(ctx, cmd, nil)
				if !assertReply(t, err, want, string(r.Return)) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close())

	_, err = c.Execute(ctx, "query-status", nil)
	require.ErrorIs(t, err, ErrClosed)
}

func assertReply(t *testing.T, err error, want, got string) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	if got != want {
		t.Errorf("reply %s, want %s", got, want)
		return false
	}
	return true
}

func TestServerGoneFailsPendingExecutes(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "qmp.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	srv := qmptest.NewServer(qmptest.Config{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c, err := Dial(context.Background(), "unix", path)
	require.NoError(t, err)
	require.NoError(t, srv.Close())
	<-served
	_, err = c.Execute(context.Background(), "query-status", nil)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, c.Close())
}
