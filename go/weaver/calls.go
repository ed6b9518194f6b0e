package main

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"regexp"
	"strings"
	"text/template"
)

// Call-site join points: `function-call: net/http.Get` or `(*database/sql.DB).Query` selects the
// calls made in the rule's package to that function or method; `wrap-call` advice replaces each
// call with an expression in which the original call appears once ({{.Call}}). The original
// call's bytes stay where they were (a splice before and after it), so its arguments are
// evaluated exactly when and as often as before.

// callee is a parsed function-call join point.
type callee struct {
	path string // import path of the package declaring the function or method
	recv string // receiver type name ("" for a function)
	ptr  bool   // pointer receiver
	name string
}

// full is the spelling of types.Func.FullName: `path.F`, `(*path.T).M`, `(path.T).M`.
func (c *callee) full() string {
	if c.recv == "" {
		return c.path + "." + c.name
	}
	star := ""
	if c.ptr {
		star = "*"
	}
	return "(" + star + c.path + "." + c.recv + ")." + c.name
}

var (
	identRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	calleeFunc = regexp.MustCompile(`^([^()\s*]+)\.([A-Za-z_][A-Za-z0-9_]*)$`)
	calleeMeth = regexp.MustCompile(`^\((\*?)([^()\s*]+)\.([A-Za-z_][A-Za-z0-9_]*)\)\.([A-Za-z_][A-Za-z0-9_]*)$`)
)

func parseCallee(s string) (*callee, error) {
	if m := calleeMeth.FindStringSubmatch(s); m != nil {
		return &callee{path: m[2], recv: m[3], ptr: m[1] == "*", name: m[4]}, nil
	}
	if m := calleeFunc.FindStringSubmatch(s); m != nil {
		return &callee{path: m[1], name: m[2]}, nil
	}
	return nil, fmt.Errorf("join.function-call %q is not `IMPORTPATH.F`, `(IMPORTPATH.T).M` or `(*IMPORTPATH.T).M`", s)
}

// callSentinel stands for the original call while a wrap-call template is rendered; the text
// around it is what gets spliced before and after the call.
const callSentinel = "gotapORIGINALCALL\x00"

// callData is what a wrap-call template sees.
type callData struct {
	Call    string // the original call
	Func    string // the callee, as the rule names it
	results []string
	typed   bool // results known (type information available)
}

// Results is the call's result types as this file can write them: "" (none), "T", "(A, B)".
func (d callData) Results() (string, error) {
	if !d.typed {
		return "", errNoResultTypes
	}
	switch len(d.results) {
	case 0:
		return "", nil
	case 1:
		return d.results[0], nil
	}
	return "(" + strings.Join(d.results, ", ") + ")", nil
}

// NumResults is the number of values the call returns.
func (d callData) NumResults() (int, error) {
	if !d.typed {
		return 0, errNoResultTypes
	}
	return len(d.results), nil
}

var errNoResultTypes = fmt.Errorf("the call's result types are unknown (no type information for this package, or a result type this file cannot name)")

func parseWrap(name, src string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("advice.wrap-call: %v", err)
	}
	// A trial render: {{.Call}} once, and the whole an expression.
	pre, post, err := renderWrap(t, callData{Func: "f", results: []string{"int", "error"}, typed: true})
	if err != nil {
		return nil, fmt.Errorf("advice.wrap-call: %v", err)
	}
	if _, err := parser.ParseExpr(pre + "f()" + post); err != nil {
		return nil, fmt.Errorf("advice.wrap-call does not parse as a Go expression: %v", err)
	}
	return t, nil
}

// renderWrap renders a wrap-call template and splits it around the original call.
func renderWrap(t *template.Template, d callData) (pre, post string, err error) {
	d.Call = callSentinel
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", "", err
	}
	parts := strings.Split(strings.TrimSpace(b.String()), callSentinel)
	if len(parts) != 2 {
		return "", "", fmt.Errorf("{{.Call}} must appear exactly once in advice.wrap-call (found %d)", len(parts)-1)
	}
	return parts[0], parts[1], nil
}

// typeCheck type-checks the package against the export data the compile step's importcfg
// names. Errors are tolerated (the compiler reports them): only calls whose callee go/types
// resolved to a function are used.
func typeCheck(pkgPath, importcfg string, fset *token.FileSet, files []*ast.File) (pkg *types.Package, info *types.Info, err error) {
	// go/importer panics on export data it cannot read (another toolchain's): no type
	// information then, never a crash.
	defer func() {
		if r := recover(); r != nil {
			pkg, info, err = nil, nil, fmt.Errorf("%v", r)
		}
	}()
	data, err := os.ReadFile(importcfg)
	if err != nil {
		return nil, nil, err
	}
	pkgFiles, importMap := map[string]string{}, map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		verb, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		k, v, ok := strings.Cut(args, "=")
		if !ok {
			continue
		}
		switch verb {
		case "packagefile":
			pkgFiles[k] = v
		case "importmap":
			importMap[k] = v
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		if m, ok := importMap[path]; ok {
			path = m
		}
		f, ok := pkgFiles[path]
		if !ok {
			return nil, fmt.Errorf("%s is not in the importcfg", path)
		}
		return os.Open(f)
	}
	info = &types.Info{
		Types:      map[ast.Expr]types.TypeAndValue{},
		Uses:       map[*ast.Ident]types.Object{},
		Defs:       map[*ast.Ident]types.Object{},
		Implicits:  map[ast.Node]types.Object{},
		Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup), Error: func(error) {}, FakeImportC: true}
	pkg, _ = conf.Check(pkgPath, fset, files, info)
	return pkg, info, nil
}

// calleeOf names what a call refers to, as types.Func.FullName spells it, or "" when that is
// unknown. With type information every function and method call resolves; without it only
// calls to package-level functions of an imported package (`pkg.F(…)`) or of the package
// itself (`F(…)`), told apart from local names by go/parser's object resolution.
func calleeOf(call *ast.CallExpr, f *ast.File, info *types.Info, pkgPath string, pkgFuncs map[string]bool) string {
	fun := ast.Unparen(call.Fun)
	switch x := fun.(type) {
	case *ast.IndexExpr:
		fun = x.X
	case *ast.IndexListExpr:
		fun = x.X
	}
	if info != nil {
		var id *ast.Ident
		switch x := fun.(type) {
		case *ast.Ident:
			id = x
		case *ast.SelectorExpr:
			id = x.Sel
		}
		if id == nil {
			return ""
		}
		fn, ok := info.Uses[id].(*types.Func)
		if !ok {
			return ""
		}
		return stripTypeArgs(fn.Origin().FullName())
	}
	switch x := fun.(type) {
	case *ast.Ident:
		if pkgFuncs[x.Name] && (x.Obj == nil || isFuncDecl(x.Obj)) {
			return pkgPath + "." + x.Name
		}
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok || id.Obj != nil {
			return ""
		}
		if p := importedAs(f, id.Name); p != "" {
			return p + "." + x.Sel.Name
		}
	}
	return ""
}

func isFuncDecl(o *ast.Object) bool {
	fd, ok := o.Decl.(*ast.FuncDecl)
	return ok && fd.Recv == nil
}

// stripTypeArgs turns `(*p.List[T]).Push` into `(*p.List).Push`.
func stripTypeArgs(s string) string {
	for {
		i := strings.IndexByte(s, '[')
		if i < 0 {
			return s
		}
		depth, j := 0, i
		for ; j < len(s); j++ {
			if s[j] == '[' {
				depth++
			} else if s[j] == ']' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		if j == len(s) {
			return s
		}
		s = s[:i] + s[j+1:]
	}
}

// importedAs is the import path that name stands for in f, or "" when that is not certain: an
// explicit import name, or the last element of the path when it is an identifier (after a /vN
// major-version suffix); a package whose name differs from its path is resolved only with type
// information or an explicit import name.
func importedAs(f *ast.File, name string) string {
	for _, im := range f.Imports {
		path := strings.Trim(im.Path.Value, "`\"")
		if im.Name != nil {
			if im.Name.Name == name {
				return path
			}
			continue
		}
		elems := strings.Split(path, "/")
		last := elems[len(elems)-1]
		if len(elems) > 1 && regexp.MustCompile(`^v[0-9]+$`).MatchString(last) {
			last = elems[len(elems)-2]
		}
		if last == name && identRe.MatchString(last) {
			return path
		}
	}
	return ""
}

// resultTypes are the call's result types written for file f (package names as f imports
// them); ok is false when a type cannot be written there (its package is not imported by f, or
// it is unexported in another package).
func resultTypes(call *ast.CallExpr, f *ast.File, info *types.Info, self *types.Package) ([]string, bool) {
	sig, ok := info.TypeOf(call.Fun).(*types.Signature)
	if !ok {
		return nil, false
	}
	names := map[string]string{}
	for _, im := range f.Imports {
		pn := info.PkgNameOf(im)
		if pn == nil || pn.Name() == "_" || pn.Name() == "." {
			continue
		}
		names[pn.Imported().Path()] = pn.Name()
	}
	good := true
	qual := func(p *types.Package) string {
		if p == self || (self != nil && p.Path() == self.Path()) {
			return ""
		}
		n, ok := names[p.Path()]
		if !ok {
			good = false
		}
		return n
	}
	var out []string
	for i := 0; i < sig.Results().Len(); i++ {
		t := sig.Results().At(i).Type()
		out = append(out, types.TypeString(t, qual))
		if !exportedOutside(t, self) {
			good = false
		}
	}
	return out, good
}

// exportedOutside reports whether every named type in t is exported or local to self.
func exportedOutside(t types.Type, self *types.Package) bool {
	seen := map[types.Type]bool{}
	var walk func(types.Type) bool
	walk = func(t types.Type) bool {
		if seen[t] {
			return true
		}
		seen[t] = true
		switch x := t.(type) {
		case *types.Named:
			o := x.Obj()
			if o.Pkg() != nil && o.Pkg() != self && !o.Exported() {
				return false
			}
			if args := x.TypeArgs(); args != nil {
				for i := 0; i < args.Len(); i++ {
					if !walk(args.At(i)) {
						return false
					}
				}
			}
			return true
		case *types.Pointer:
			return walk(x.Elem())
		case *types.Slice:
			return walk(x.Elem())
		case *types.Array:
			return walk(x.Elem())
		case *types.Chan:
			return walk(x.Elem())
		case *types.Map:
			return walk(x.Key()) && walk(x.Elem())
		case *types.Signature:
			for _, tu := range []*types.Tuple{x.Params(), x.Results()} {
				for i := 0; i < tu.Len(); i++ {
					if !walk(tu.At(i).Type()) {
						return false
					}
				}
			}
			return true
		case *types.Struct:
			for i := 0; i < x.NumFields(); i++ {
				if !walk(x.Field(i).Type()) {
					return false
				}
			}
			return true
		}
		return true
	}
	return walk(t)
}

// goDeferCalls are the calls that are the operand of a go or defer statement: wrapping them in
// an expression would move the evaluation of their arguments to when the call runs.
func goDeferCalls(f *ast.File) map[*ast.CallExpr]bool {
	out := map[*ast.CallExpr]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch s := n.(type) {
		case *ast.GoStmt:
			out[s.Call] = true
		case *ast.DeferStmt:
			out[s.Call] = true
		}
		return true
	})
	return out
}
