package wirereactor

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sansIO lists the code that must stay free of I/O, goroutines, locks and the
// clock: the machine packages, whole (the driven QMP client lives apart, in
// qmp/qmpclient).
var sansIO = []string{
	"action/*.go",
	"action/actiontest/*.go",
	"frame/*.go",
	"hgcbor/*.go",
	"framing/*.go",
	"jsonstream/*.go",
	"reactor/*.go",
	"qmp/*.go",
	"transcript/format.go",
	"transcript/replay.go",
	"transcript/frames.go",
}

// forbiddenImports may not appear in sans-IO code. "time" is allowed for
// time.Time and time.Duration values; clock reads are checked separately.
var forbiddenImports = []string{"net", "os", "sync", "context", "log", "syscall", "io/fs"}

var clockFuncs = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true,
}

func TestSansIOCodeDoesNoIO(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, pattern := range sansIO {
		files, err := filepath.Glob(pattern)
		require.NoError(t, err)
		require.NotEmpty(t, files, "pattern %s matches no file: update the list", pattern)
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			checked++
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbiddenImports {
					if path == bad || strings.HasPrefix(path, bad+"/") {
						t.Errorf("%s imports %q: sans-IO code must not", name, path)
					}
				}
				if strings.Contains(path, "/transport") {
					t.Errorf("%s imports %q: machines know no transport", name, path)
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: a go statement at %s: machines start no goroutines", name, fset.Position(n.Pos()))
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" && clockFuncs[n.Sel.Name] {
						t.Errorf("%s: time.%s at %s: machines take the time as input", name, n.Sel.Name, fset.Position(n.Pos()))
					}
				}
				return true
			})
		}
	}
	require.Greater(t, checked, 20, "the check must look at the machines' files")
}

// TestTransportKnowsNoProtocol checks the import direction: transports drive
// any action.Machine and import no protocol package.
func TestTransportKnowsNoProtocol(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("transport/*.go")
	require.NoError(t, err)
	more, err := filepath.Glob("transport/*/*.go")
	require.NoError(t, err)
	files = append(files, more...)
	require.NotEmpty(t, files)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, proto := range []string{"/frame", "/framing", "/reactor", "/qmp", "/hgcbor"} {
				if strings.HasPrefix(path, "github.com/wirereactor/wirereactor") && strings.HasSuffix(path, proto) {
					t.Errorf("%s imports protocol package %q", name, path)
				}
			}
		}
	}
}

// machinePackages are the packages an embedder of a machine imports; the
// program they build must link no I/O.
var machinePackages = []string{"action", "frame", "hgcbor", "framing", "jsonstream", "reactor", "qmp"}

// ioDeps are the packages whose presence among a machine package's
// dependencies means it links I/O: networking, TLS, processes, signals,
// structured logging, the WebSocket library, and the project's own
// transports. "os" cannot be among them: fmt imports it. Plain "log" and
// "context" cannot either: klauspost/compress/zstd (behind reactor) imports
// them; the source check above keeps them out of the machines' own code.
var ioDeps = []string{
	"net", "crypto/tls", "os/exec", "os/signal", "log/slog",
	"golang.org/x/net", "github.com/wirereactor/wirereactor/transport",
}

// TestMachinesLinkNoIO lists every package a machine package links (go
// list -deps): embedding any machine must not pull in net, net/http,
// crypto/tls, os/exec, x/net/websocket or a transport.
func TestMachinesLinkNoIO(t *testing.T) {
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command lists the dependencies")
	for _, pkg := range machinePackages {
		out, err := exec.Command(gobin, "list", "-deps", "./"+pkg).CombinedOutput()
		require.NoError(t, err, "go list -deps ./%s: %s", pkg, out)
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range ioDeps {
				if dep == bad || strings.HasPrefix(dep, bad+"/") {
					t.Errorf("package %s links %s: embedding a machine must link no I/O", pkg, dep)
				}
			}
		}
	}
}
