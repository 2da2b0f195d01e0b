// Package testaddr gives tests loopback addresses.
package testaddr

import (
	"net"
	"testing"
)

// Dead returns a loopback host:port nothing listens on (a port the kernel just handed
// out and took back), for tests of unreachable services.
func Dead(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
