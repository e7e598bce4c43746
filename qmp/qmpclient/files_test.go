package qmpclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/qmp/qmpclient"
	"github.com/wirereactor/wirereactor/qmp/qmptest"
)

// raceGetfd runs n ExecuteWithFiles("getfd") beside n plain
// Execute("getfd"), all at once, and checks that every descriptor went to
// the command it was passed with: every ExecuteWithFiles succeeds, every
// plain getfd fails for want of a descriptor.
func raceGetfd(t *testing.T, c *qmpclient.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("with-%d", i)
			if _, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": name}, w); err != nil {
				errs <- fmt.Errorf("ExecuteWithFiles %s: %w", name, err)
			}
		}()
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("plain-%d", i)
			_, err := c.Execute(ctx, "getfd", map[string]string{"fdname": name})
			var ee *qmpclient.ExecuteError
			if !errors.As(err, &ee) || ee.Info.Desc != "No file descriptor supplied via SCM_RIGHTS" {
				errs <- fmt.Errorf("plain getfd %s took a descriptor (err %v)", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 5 {
			t.Error(err)
		}
	}
	require.Zero(t, failed, "descriptors that went to the wrong command")
}

func TestDescriptorGoesToItsCommandQMPTest(t *testing.T) {
	s := qmptest.StartUnix(t, qmptest.Config{})
	c := connectFake(t, s)
	raceGetfd(t, c, 200)
	require.NotNil(t, s.FD("with-199"))
}

func TestExecuteWithFilesOverTCPFailsAlone(t *testing.T) {
	for _, addr := range []string{"tcp:127.0.0.1:0", "ws://127.0.0.1:0/qmp"} {
		t.Run(addr[:3], func(t *testing.T) {
			s := qmptest.NewServer(qmptest.Config{})
			defer s.Close()
			require.NoError(t, s.Start(context.Background(), addr))
			c := connectFake(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "x"}, os.Stdin)
			require.ErrorIs(t, err, qmpclient.ErrFilesUnsupported)
			_, err = c.Execute(ctx, "query-status", nil)
			require.NoError(t, err, "the session keeps running")
			require.NoError(t, c.Disconnect(ctx))
		})
	}
}

func TestExecuteWithFilesOverAStartedPipeFailsAlone(t *testing.T) {
	// A stream the Client did not dial itself: found out at the write,
	// before anything is written.
	s := qmptest.NewServer(qmptest.Config{})
	defer s.Close()
	client, server := net.Pipe()
	require.NoError(t, s.ServeConn(server))
	c := qmpclient.NewClient(qmpclient.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Session().Start(ctx, client))
	_, err := c.ExecuteWithFiles(ctx, "getfd", map[string]string{"fdname": "x"}, os.Stdin)
	require.ErrorIs(t, err, qmpclient.ErrFilesUnsupported)
	_, err = c.Execute(ctx, "query-status", nil)
	require.NoError(t, err, "the session keeps running")
	require.NoError(t, c.Disconnect(ctx))
}
