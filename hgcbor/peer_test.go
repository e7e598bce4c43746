package hgcbor_test

import (
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wirereactor/wirereactor/internal/testpeers"
)

const encodeScript = `
import json, sys
from mercurial.utils import cborutil
out = []
for lit in json.load(sys.stdin):
    out.append(b''.join(cborutil.streamencode(eval(lit))).hex())
json.dump(out, sys.stdout)
`

// decodeScript prints what Mercurial decodes, with sets and dicts in a
// stable order so that reprs compare.
const decodeScript = `
import json, sys
from mercurial.utils import cborutil
def canon(v):
    if isinstance(v, (set, frozenset)):
        return ('set', sorted((canon(e) for e in v), key=repr))
    if isinstance(v, dict):
        return ('dict', sorted(((canon(k), canon(e)) for k, e in v.items()), key=repr))
    if isinstance(v, list):
        return [canon(e) for e in v]
    return v
out = []
for h in json.load(sys.stdin):
    out.append(repr(canon(cborutil.decodeall(bytes.fromhex(h)))))
json.dump(out, sys.stdout)
`

// runPython feeds in to script as JSON and returns its JSON answer.
func runPython(t *testing.T, script string, in []string) []string {
	t.Helper()
	js, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(testpeers.MercurialPython(t), "-c", script)
	cmd.Stdin = strings.NewReader(string(js))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	require.NoError(t, err, "python: %s", stderr.String())
	var out []string
	require.NoError(t, json.Unmarshal(outb, &out))
	require.Len(t, out, len(in))
	return out
}

// hexes is a test helper that decodes hex strings.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}
