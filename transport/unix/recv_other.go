//go:build unix && !linux

package unix

import "net"

// recvState is only needed on Linux, where reads bypass ReadMsgUnix.
type recvState struct{}

func (*recvState) init(*net.UnixConn) {}

// readMsg reads into p and c.oob.
func (c *Conn) readMsg(p []byte) (n, oobn, flags int, err error) {
	n, oobn, flags, _, err = c.uc.ReadMsgUnix(p, c.oob)
	return n, oobn, flags, err
}
