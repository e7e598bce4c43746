// Package testcert is the module's internal/testcert under its old import
// path, for the transport tests that still use it.
package testcert

import (
	"crypto/tls"

	"github.com/wirereactor/wirereactor/internal/testcert"
)

// New is testcert.New: a server config holding a certificate for localhost
// and 127.0.0.1, and a client config trusting it.
func New() (server, client *tls.Config, err error) { return testcert.New() }
