package qmpclient

import (
	"os"
	"os/exec"
	"testing"
)

// qemuBinary is the path of qemu-system-x86_64. Without it, it skips t, or
// fails it when WIREREACTOR_REQUIRE_PEERS=1.
func qemuBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1" {
			t.Fatalf("qemu-system-x86_64 is required (WIREREACTOR_REQUIRE_PEERS=1): %v", err)
		}
		t.Skip("qemu-system-x86_64 not installed; set WIREREACTOR_REQUIRE_PEERS=1 to fail instead")
	}
	return bin
}
