package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wirereactor/wirereactor/hgcbor"
	"github.com/wirereactor/wirereactor/reactor"
	"github.com/wirereactor/wirereactor/transport"
)

// Client calls commands of a frame-protocol server over one connection.
// Calls are serialised; it is safe for concurrent use. Delivered Data may
// alias the session's reused read buffer; the session copies it for us
// through the reactor's Retain method (action.Retainer).
type Client struct {
	mu   sync.Mutex
	sess *transport.Session[reactor.Response, *reactor.ClientMachine]
}

// CommandError is a command error the server answered with.
type CommandError struct {
	Message string
	Args    []string
}

// Error formats the message with its arguments, as Mercurial does.
func (e *CommandError) Error() string {
	args := make([]any, len(e.Args))
	for i, a := range e.Args {
		args[i] = a
	}
	return "command error: " + fmt.Sprintf(e.Message, args...)
}

// Dial connects to a server.
func Dial(ctx context.Context, d transport.Dialer) (*Client, error) {
	c := &Client{sess: transport.New(transport.Config[reactor.Response, *reactor.ClientMachine]{
		Name: "hgframe-client",
		NewMachine: func() *reactor.ClientMachine {
			return reactor.NewClientMachine(reactor.ClientMachineConfig{MultipleSends: true, Immediate: true})
		},
	})}
	if err := c.sess.Connect(ctx, d); err != nil {
		return nil, err
	}
	return c, nil
}

// Close disconnects.
func (c *Client) Close() error {
	err := c.sess.Disconnect(context.Background())
	if errors.Is(err, transport.ErrPeerClosed) {
		return nil
	}
	return err
}

// Call runs command name with args and returns the objects of its
// response, after the leading status object. A command error is a
// *CommandError.
func (c *Client) Call(ctx context.Context, name string, args map[hgcbor.Bytes]any) ([]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rid uint16
	err := c.sess.Do(ctx, func(m *reactor.ClientMachine) error {
		var err error
		rid, err = m.CallCommand(reactor.Request{Name: name, Args: args})
		return err
	})
	if err != nil {
		return nil, err
	}
	var body []byte
	for {
		r, err := c.sess.Recv(ctx)
		if err != nil {
			return nil, err
		}
		if r.RequestID != rid {
			continue
		}
		switch r.Kind {
		case reactor.ResponseKindError:
			return nil, fmt.Errorf("%s error: %v", r.Error.Type, r.Error.Message)
		case reactor.ResponseKindData:
			body = append(body, r.Data...)
			if !r.EOS {
				continue
			}
		default:
			continue
		}
		break
	}
	objs, err := decodeObjects(body)
	if err != nil {
		return nil, fmt.Errorf("decoding the response to %s: %w", name, err)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("empty response to %s", name)
	}
	status, _ := objs[0].(map[any]any)
	switch s, _ := status[hgcbor.Bytes("status")].([]byte); string(s) {
	case "ok":
		return objs[1:], nil
	case "error":
		e, _ := status[hgcbor.Bytes("error")].(map[any]any)
		msg, _ := e[hgcbor.Bytes("message")].([]byte)
		ce := &CommandError{Message: string(msg)}
		list, _ := e[hgcbor.Bytes("args")].([]any)
		for _, a := range list {
			b, _ := a.([]byte)
			ce.Args = append(ce.Args, string(b))
		}
		return nil, ce
	}
	return nil, fmt.Errorf("response to %s starts with %v, not a status object", name, objs[0])
}

// decodeObjects decodes a response's objects one at a time, each within
// hgcbor's default budget for its own size: a stream of small maps (a
// few hundred bytes of Go memory each) decoded as one would exceed the
// budget for the whole body.
func decodeObjects(body []byte) ([]any, error) {
	d := hgcbor.Decoder{MaxBuffered: len(body) + 1}
	d.Feed(body)
	var objs []any
	for {
		v, ok, err := d.Next()
		switch {
		case err != nil:
			return nil, err
		case ok:
			objs = append(objs, v)
		case d.InProgress():
			return nil, fmt.Errorf("response ends inside a CBOR item")
		default:
			return objs, nil
		}
	}
}
