package reactor

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// mercurialPython returns a Python interpreter that can import Mercurial
// 6.3, or skips the test (fails it when WIREREACTOR_REQUIRE_PEERS=1).
func mercurialPython(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "-c", "from mercurial import util, wireprotoframing; print(util.version().decode())").Output()
		if err == nil && bytes.HasPrefix(out, []byte("6.3")) {
			return path
		}
	}
	if os.Getenv("WIREREACTOR_REQUIRE_PEERS") == "1" {
		t.Fatal("Mercurial 6.3 is not importable by python3, and WIREREACTOR_REQUIRE_PEERS=1")
	}
	t.Skip("Mercurial 6.3 is not importable by python3: skipping the live comparison (apt-get install mercurial)")
	return ""
}

// TestVectorsMatchLiveMercurial re-runs the vector generator against the
// installed Mercurial and requires its output to be the committed file, so
// the replay tests compare against what Mercurial does today.
func TestVectorsMatchLiveMercurial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Mercurial")
	}
	py := mercurialPython(t)
	cmd := exec.Command(py, "testdata/gen_reactor_vectors.py")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	want, err := os.ReadFile(vectorsPath)
	require.NoError(t, err)
	if !bytes.Equal(want, out) {
		t.Fatalf("Mercurial's reactors now answer differently from %s (%d bytes generated, %d committed); "+
			"regenerate with: %s testdata/gen_reactor_vectors.py > %s, then review the replay tests",
			vectorsPath, len(out), len(want), py, vectorsPath)
	}
}
