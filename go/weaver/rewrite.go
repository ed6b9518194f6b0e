package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The rewrite is a splice, not a reprint: advice text is inserted at byte offsets found with
// go/ast, so every original byte stays as written and a `/*line file:L:C*/` directive after each
// insertion gives the following code back its original position (compiler errors, panics and
// DWARF keep pointing at the user's file and line).

type insertion struct {
	off  int
	text string
	// order among insertions at one offset: wrap-call prefixes of later rules inside earlier
	// ones (ascending), their suffixes in reverse (descending), everything else 0.
	key int
}

// funcData is what a prepend template sees.
type funcData struct {
	Func    string
	Recv    string
	params  []string
	results []string
}

func (d funcData) Param(i int) (string, error)  { return pick("parameter", d.params, i) }
func (d funcData) Result(i int) (string, error) { return pick("result", d.results, i) }

func pick(what string, names []string, i int) (string, error) {
	if i < 0 || i >= len(names) {
		return "", fmt.Errorf("the function has no %s %d", what, i)
	}
	if names[i] == "" || names[i] == "_" {
		return "", fmt.Errorf("%s %d is unnamed, the advice cannot refer to it", what, i)
	}
	return names[i], nil
}

func fieldNames(fl *ast.FieldList) []string {
	var out []string
	if fl == nil {
		return out
	}
	for _, f := range fl.List {
		if len(f.Names) == 0 {
			out = append(out, "")
		}
		for _, n := range f.Names {
			out = append(out, n.Name)
		}
	}
	return out
}

// recvType renders a receiver type as a rule writes it: `T` or `*T` (type parameters dropped).
func recvType(e ast.Expr) string {
	star := ""
	if s, ok := e.(*ast.StarExpr); ok {
		star, e = "*", s.X
	}
	switch t := e.(type) {
	case *ast.IndexExpr:
		e = t.X
	case *ast.IndexListExpr:
		e = t.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return star + id.Name
	}
	return ""
}

func checkDecls(src string) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	_, err := parser.ParseFile(token.NewFileSet(), "declarations", "package p\n"+src, parser.SkipObjectResolution)
	return err
}

func checkStmts(src string) error {
	_, err := parser.ParseFile(token.NewFileSet(), "advice", "package p\nfunc _() {\n"+src+"\n}", parser.SkipObjectResolution)
	return err
}

type parsedFile struct {
	path string
	src  []byte
	fset *token.FileSet
	file *ast.File
	ins  []insertion
}

// weave applies rules (all targeting the package being compiled) to files and writes the changed
// files to outDir. It returns original path → rewritten path for the files it changed, and the
// files the rules add to the package (add-files advice).
func weave(rules []*Rule, files []string, outDir string, bestEffort bool, pkgPath, importcfg string) (map[string]string, []string, []string, error) {
	added, err := addedFiles(rules, files)
	if err != nil {
		return nil, nil, nil, err
	}
	changed, warnings, err := splice(rules, files, outDir, bestEffort, pkgPath, importcfg)
	return changed, warnings, added, err
}

// addedFiles lists the add-files of rules, refusing two files with the same name (they are
// compiled from one directory) or a name the package already uses.
func addedFiles(rules []*Rule, files []string) ([]string, error) {
	names := map[string]string{}
	for _, f := range files {
		names[filepath.Base(f)] = "package " + f
	}
	added := []string{}
	for _, r := range rules {
		for _, f := range r.addedFiles() {
			base := filepath.Base(f)
			if prev, dup := names[base]; dup {
				if prev == f {
					continue
				}
				return nil, fmt.Errorf("rule %s: added file %s has the same name as %s", r.Name, f, prev)
			}
			names[base] = f
			added = append(added, f)
		}
	}
	return added, nil
}

func splice(rules []*Rule, files []string, outDir string, bestEffort bool, pkgPath, importcfg string) (map[string]string, []string, error) {
	var warnings []string
	var parsed []*parsedFile
	// One file set for the package: go/types needs it. Object resolution only for call sites and
	// structs: without type information it tells an imported package's name from a local variable.
	fset := token.NewFileSet()
	mode := parser.ParseComments | parser.SkipObjectResolution
	for _, r := range rules {
		if r.callee != nil || r.Join.StructDefinition != "" {
			mode = parser.ParseComments
		}
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		f, err := parser.ParseFile(fset, path, src, mode)
		if err != nil {
			// Not ours to report: the compiler will, with its own message.
			return map[string]string{}, nil, nil
		}
		parsed = append(parsed, &parsedFile{path: path, src: src, fset: fset, file: f})
	}
	if len(parsed) == 0 {
		return map[string]string{}, nil, nil
	}
	w := &weaving{pkgPath: pkgPath, files: parsed, fset: fset, bestEffort: bestEffort}
	for _, r := range rules {
		if r.callee != nil && w.pkgFuncs == nil {
			w.prepareCalls(importcfg)
		}
	}
	for i, r := range rules {
		var matched int
		var declHost *parsedFile
		var msg string
		var err error
		switch {
		case r.callee != nil:
			matched, declHost, msg, err = w.wrapCalls(r, i)
		case r.Join.StructDefinition != "":
			matched, declHost, msg, err = w.addFields(r)
		default:
			matched, declHost, msg, err = w.functionBody(r)
		}
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, w.warnings...)
		w.warnings = nil
		if matched == 0 {
			if !bestEffort {
				return nil, nil, fmt.Errorf("%s", msg)
			}
			// Declarations still go in: the runtime links against them.
			warnings = append(warnings, msg+"; join point left unwoven (--best-effort)")
			declHost = parsed[0]
		}
		if r.Advice.Declarations != "" {
			pf := declHost
			pf.ins = append(pf.ins, insertion{off: len(pf.src), text: fmt.Sprintf("\n\n//line gotap-rule-%s-declarations.go:1\n%s\n", r.Name, r.Advice.Declarations)})
			if strings.Contains(r.Advice.Declarations, "//go:linkname") && !importsUnsafe(pf.file) {
				// //go:linkname needs the file to import unsafe; on the package line, so no line moves.
				off := pf.fset.Position(pf.file.Name.End()).Offset
				pf.ins = append(pf.ins, insertion{off: off, text: `; import _ "unsafe"`})
			}
		}
	}
	out := map[string]string{}
	for _, pf := range parsed {
		if len(pf.ins) == 0 {
			continue
		}
		sort.SliceStable(pf.ins, func(i, j int) bool {
			a, b := pf.ins[i], pf.ins[j]
			return a.off < b.off || (a.off == b.off && a.key < b.key)
		})
		var b bytes.Buffer
		fmt.Fprintf(&b, "//line %s:1\n", pf.path)
		last := 0
		for _, in := range pf.ins {
			b.Write(pf.src[last:in.off])
			b.WriteString(in.text)
			last = in.off
		}
		b.Write(pf.src[last:])
		dst := filepath.Join(outDir, filepath.Base(pf.path))
		if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
			return nil, nil, err
		}
		out[pf.path] = dst
	}
	return out, warnings, nil
}

func render(r *Rule, d funcData) (string, error) {
	var b strings.Builder
	if err := r.prep.Execute(&b, d); err != nil {
		return "", err
	}
	s := strings.TrimRight(b.String(), "\n")
	if err := checkStmts(s); err != nil {
		return "", fmt.Errorf("advice.prepend does not parse as Go statements: %v", err)
	}
	return s, nil
}

func importsUnsafe(f *ast.File) bool {
	for _, im := range f.Imports {
		if im.Path.Value == `"unsafe"` {
			return true
		}
	}
	return false
}
