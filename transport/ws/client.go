package ws

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wirereactor/wirereactor/action"
)

// Limits of the client's opening handshake.
const (
	// maxResponseHead bounds the HTTP response head a server may send.
	maxResponseHead = 16 << 10
	// maxErrorBody bounds the body of a refused upgrade kept in a
	// HandshakeError.
	maxErrorBody = 4 << 10
	// errorBodyWait bounds the wait for that body when the caller's context
	// has no earlier deadline.
	errorBodyWait = 2 * time.Second
)

// acceptGUID is RFC 6455's constant for Sec-WebSocket-Accept.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// HandshakeError is a refused or malformed opening handshake, as the
// client saw it: the server answered with a status other than 101 (a
// bridge's 401, 403 or 502, say), or a 101 that breaks RFC 6455. Use
// errors.As to read the status and the server's message.
type HandshakeError struct {
	// StatusCode and Status are the server's, e.g. 401 and
	// "401 Unauthorized".
	StatusCode int
	Status     string
	// Body is the start of the response body (at most 4 KiB), typically
	// the server's explanation; empty for a 101.
	Body string
	// Reason says what was wrong with a 101 response; empty when the
	// status was not 101.
	Reason string
}

// Error gives what was wrong with a 101 response, or the server's status
// and the start of its response body when it refused the upgrade.
func (e *HandshakeError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("ws: handshake: %s", e.Reason)
	}
	msg := fmt.Sprintf("ws: handshake refused: %s", e.Status)
	if body := strings.TrimSpace(e.Body); body != "" {
		msg += ": " + body
	}
	return msg
}

// acceptFor computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptFor(key string) string {
	sum := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// clientHandshake sends the upgrade request for u on nc and reads the
// response. It returns the negotiated subprotocol and any bytes the server
// sent after the response head. The caller bounds it with a deadline on nc.
//
// It is written here rather than taken from x/net/websocket, whose client
// reports every refusal as ErrBadStatus, hiding the status and the body.
func clientHandshake(nc net.Conn, u *url.URL, origin string, header http.Header) (protocol string, leftover []byte, err error) {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])

	var req bytes.Buffer
	path := u.RequestURI()
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, u.Host)
	req.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\n", key)
	fmt.Fprintf(&req, "Sec-WebSocket-Protocol: %s\r\n", Subprotocol)
	if origin != "" {
		fmt.Fprintf(&req, "Origin: %s\r\n", origin)
	}
	for name, values := range header {
		if !validHeaderName(name) {
			return "", nil, fmt.Errorf("ws: bad header name %q", name)
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n") {
				return "", nil, fmt.Errorf("ws: header %s: value contains a line break", name)
			}
			fmt.Fprintf(&req, "%s: %s\r\n", name, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := nc.Write(req.Bytes()); err != nil {
		return "", nil, err
	}

	lr := &io.LimitedReader{R: nc, N: maxResponseHead}
	br := bufio.NewReaderSize(lr, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		if lr.N == 0 {
			// Size: the limit was read without the head ending.
			return "", nil, fmt.Errorf("ws: handshake: %w", &action.LimitError{What: "response head bytes", Size: maxResponseHead + 1, Limit: maxResponseHead})
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", nil, fmt.Errorf("ws: handshake: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		// Keep the server's explanation, briefly.
		lr.N += maxErrorBody
		if d, ok := nc.(interface{ SetReadDeadline(time.Time) error }); ok {
			_ = d.SetReadDeadline(time.Now().Add(errorBodyWait))
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return "", nil, &HandshakeError{StatusCode: resp.StatusCode, Status: resp.Status, Body: string(body)}
	}
	bad := func(reason string) error {
		return &HandshakeError{StatusCode: resp.StatusCode, Status: resp.Status, Reason: reason}
	}
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return "", nil, bad(fmt.Sprintf("101 response with Upgrade %q, want websocket", resp.Header.Get("Upgrade")))
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return "", nil, bad(fmt.Sprintf("101 response with Connection %q, want Upgrade", resp.Header.Get("Connection")))
	case resp.Header.Get("Sec-WebSocket-Accept") != acceptFor(key):
		return "", nil, bad("101 response with a wrong Sec-WebSocket-Accept")
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return "", nil, bad(fmt.Sprintf("server chose extensions %q that were not offered", resp.Header.Get("Sec-WebSocket-Extensions")))
	}
	if p := resp.Header.Values("Sec-WebSocket-Protocol"); len(p) > 0 {
		if len(p) != 1 || p[0] != Subprotocol {
			return "", nil, bad(fmt.Sprintf("server chose subprotocol %q, offered %q", strings.Join(p, ", "), Subprotocol))
		}
		protocol = Subprotocol
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		leftover = append([]byte(nil), b...)
	}
	return protocol, leftover, nil
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// validHeaderName reports whether name is an HTTP token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
