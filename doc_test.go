package wirereactor

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docPackage is one directory of the module as the documentation checks see
// it: its non-test files (the API godoc shows) and its _test.go files (where
// Examples live).
type docPackage struct {
	dir   string
	name  string
	files []*ast.File // non-test files
	tests []*ast.File // _test.go files, internal and external test packages
}

// modulePackages parses every package of this module: it skips testdata,
// hidden directories and nested modules (bench/peers has a go.mod of its own).
func modulePackages(t *testing.T, fset *token.FileSet) []*docPackage {
	t.Helper()
	var pkgs []*docPackage
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		base := d.Name()
		if path != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") || base == "testdata" || base == "vendor") {
			return filepath.SkipDir
		}
		if path != "." {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		p := &docPackage{dir: filepath.ToSlash(path)}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(path, e.Name()), nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			if strings.HasSuffix(e.Name(), "_test.go") {
				p.tests = append(p.tests, f)
				continue
			}
			p.files = append(p.files, f)
			p.name = f.Name.Name
		}
		if len(p.files) > 0 {
			pkgs = append(pkgs, p)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, pkgs)
	return pkgs
}

// isInternal reports whether a package directory is under an internal/
// directory, so that only code inside this module can import it.
func isInternal(dir string) bool {
	for _, part := range strings.Split(dir, "/") {
		if part == "internal" {
			return true
		}
	}
	return false
}

// documented reports whether any of the comment groups holds text.
func documented(groups ...*ast.CommentGroup) bool {
	for _, g := range groups {
		if g != nil && strings.TrimSpace(g.Text()) != "" {
			return true
		}
	}
	return false
}

// receiverType names the type a method's receiver is declared on, without
// pointer or type parameters.
func receiverType(fd *ast.FuncDecl) string {
	expr := fd.Recv.List[0].Type
	for {
		switch e := expr.(type) {
		case *ast.StarExpr:
			expr = e.X
		case *ast.ParenExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}

// undocumented lists the exported names of one file that godoc would show
// without a doc comment: types, functions, methods on exported types, and
// consts and vars (a comment on the spec, on its line, or on its
// parenthesised group counts).
func undocumented(fset *token.FileSet, f *ast.File) []string {
	var missing []string
	report := func(pos token.Pos, what string) {
		p := fset.Position(pos)
		missing = append(missing, p.Filename+":"+itoa(p.Line)+": "+what)
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			name := d.Name.Name
			if d.Recv != nil {
				recv := receiverType(d)
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			if !documented(d.Doc) {
				report(d.Pos(), "func "+name)
			}
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && !documented(s.Doc, d.Doc) {
						report(s.Pos(), "type "+s.Name.Name)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() && !documented(s.Doc, s.Comment, d.Doc) {
							report(n.Pos(), d.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	return missing
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestExportedNamesHaveDocComments holds the brief's "godoc on every exported
// name": every importable package (not main, not internal) has a package
// comment, and every exported type, func, method, const and var has a doc
// comment.
func TestExportedNamesHaveDocComments(t *testing.T) {
	fset := token.NewFileSet()
	var missing []string
	checked := 0
	for _, p := range modulePackages(t, fset) {
		if p.name == "main" || isInternal(p.dir) {
			continue
		}
		checked++
		hasPkgDoc := false
		for _, f := range p.files {
			if documented(f.Doc) {
				hasPkgDoc = true
			}
			missing = append(missing, undocumented(fset, f)...)
		}
		if !hasPkgDoc {
			missing = append(missing, p.dir+": package "+p.name+" has no package comment")
		}
	}
	require.Greater(t, checked, 10, "the walk found too few packages: is the test run from the module root?")
	if len(missing) > 0 {
		t.Errorf("%d exported names without a doc comment:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// TestPublicPackagesHaveExamples holds the brief's "runnable Example
// functions": every public library package (not main, internal, cmd/,
// examples/ or bench/) has at least one Example in its _test.go files, which
// go test compiles (and runs, when it has an Output comment).
func TestPublicPackagesHaveExamples(t *testing.T) {
	var missing []string
	checked := 0
	for _, p := range modulePackages(t, token.NewFileSet()) {
		if p.name == "main" || isInternal(p.dir) || !hasExportedAPI(p) {
			continue
		}
		if top := strings.SplitN(p.dir, "/", 2)[0]; top == "cmd" || top == "examples" || top == "bench" {
			continue
		}
		checked++
		if !hasExample(p) {
			missing = append(missing, p.dir)
		}
	}
	require.Greater(t, checked, 10, "the walk found too few packages: is the test run from the module root?")
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d public packages without an Example function in their _test.go files:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// hasExportedAPI reports whether a package declares any exported name; the
// root package only documents the module and needs no Example.
func hasExportedAPI(p *docPackage) bool {
	for _, f := range p.files {
		for _, obj := range f.Decls {
			switch d := obj.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					return true
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							return true
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								return true
							}
						}
					}
				}
			}
		}
	}
	return false
}

// hasExample reports whether the package's tests declare a go test Example:
// a top-level func named Example or Example* with no parameters and no
// results. go vet's tests analyzer checks the suffix names a real identifier;
// go test compiles every Example and runs those with an Output comment.
func hasExample(p *docPackage) bool {
	for _, f := range p.tests {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !strings.HasPrefix(fd.Name.Name, "Example") {
				continue
			}
			if fd.Type.Params.NumFields() == 0 && fd.Type.Results.NumFields() == 0 {
				return true
			}
		}
	}
	return false
}
