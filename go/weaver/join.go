package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
)

// weaving is one package being rewritten. Each join point kind finds its matches and queues
// insertions; it returns how many it matched, the file that takes the rule's declarations, and
// the message for "matched nothing".
type weaving struct {
	pkgPath    string
	files      []*parsedFile
	fset       *token.FileSet
	bestEffort bool
	warnings   []string

	// For call sites, filled by prepareCalls.
	info     *types.Info // nil without type information
	self     *types.Package
	pkgFuncs map[string]bool // package-level functions of the package (no type information)
	typeErr  error           // why type-checking was not possible, when it was attempted
}

// problem is a join point that matched but cannot be woven: an error, or with --best-effort a
// warning (the join point is left as it is).
func (w *weaving) problem(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !w.bestEffort {
		return fmt.Errorf("%s", msg)
	}
	w.warnings = append(w.warnings, msg+"; left unwoven (--best-effort)")
	return nil
}

func (w *weaving) fileList() string {
	var names []string
	for _, pf := range w.files {
		names = append(names, pf.path)
	}
	return strings.Join(names, " ")
}

func (w *weaving) functionBody(r *Rule) (int, *parsedFile, string, error) {
	if r.fn == "" {
		// A package join point: declarations go to the first file.
		return 1, w.files[0], "", nil
	}
	matched := 0
	var declHost *parsedFile
	for _, pf := range w.files {
		for _, d := range pf.file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != r.fn {
				continue
			}
			recv, recvName := "", ""
			if fd.Recv != nil && len(fd.Recv.List) == 1 {
				recv = recvType(fd.Recv.List[0].Type)
				if len(fd.Recv.List[0].Names) == 1 {
					recvName = fd.Recv.List[0].Names[0].Name
				}
			}
			if recv != r.recv {
				continue
			}
			if fd.Body == nil {
				return 0, nil, "", fmt.Errorf("rule %s: %s: %s has no body to weave into", r.Name, pf.path, r.Join.FunctionBody)
			}
			matched++
			declHost = pf
			if r.Advice.Prepend == "" {
				continue
			}
			text, err := render(r, funcData{Func: fd.Name.Name, Recv: recvName, params: fieldNames(fd.Type.Params), results: fieldNames(fd.Type.Results)})
			if err != nil {
				return 0, nil, "", fmt.Errorf("rule %s: %s: %v", r.Name, pf.fset.Position(fd.Pos()), err)
			}
			after := pf.fset.PositionFor(fd.Body.Lbrace+1, true)
			off := pf.fset.Position(fd.Body.Lbrace).Offset + 1
			pf.ins = append(pf.ins, insertion{off: off, text: fmt.Sprintf("\n//line gotap-rule-%s.go:1\n%s\n/*line %s:%d:%d*/", r.Name, text, after.Filename, after.Line, after.Column)})
		}
	}
	msg := fmt.Sprintf("rule %s: no function %s in package %s (files: %s)", r.Name, r.Join.FunctionBody, r.Join.Package, w.fileList())
	return matched, declHost, msg, nil
}

// prepareCalls gets what resolving callees needs: type information when the compile step's
// importcfg is known, else the package's own functions (for syntactic resolution).
func (w *weaving) prepareCalls(importcfg string) {
	w.pkgFuncs = map[string]bool{}
	var files []*ast.File
	for _, pf := range w.files {
		files = append(files, pf.file)
		for _, d := range pf.file.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				w.pkgFuncs[fd.Name.Name] = true
			}
		}
	}
	if importcfg == "" {
		return
	}
	self, info, err := typeCheck(w.pkgPath, importcfg, w.fset, files)
	if err != nil {
		w.typeErr = err
		w.warnings = append(w.warnings, fmt.Sprintf("package %s: no type information (%v); call sites are resolved from imports only", w.pkgPath, err))
		return
	}
	w.info, w.self = info, self
}

func (w *weaving) wrapCalls(r *Rule, idx int) (int, *parsedFile, string, error) {
	want := r.callee.full()
	matched, unresolved := 0, 0
	var declHost *parsedFile
	for _, pf := range w.files {
		deferred := goDeferCalls(pf.file)
		var err error
		ast.Inspect(pf.file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || err != nil {
				return err == nil
			}
			got := calleeOf(call, pf.file, w.info, w.pkgPath, w.pkgFuncs)
			if got != want {
				if got == "" && calledName(call) == r.callee.name {
					unresolved++
				}
				return true
			}
			pos := pf.fset.Position(call.Pos())
			if deferred[call] {
				err = w.problem("rule %s: %s: the call to %s is the operand of a go or defer statement, which wrap-call cannot wrap without moving the evaluation of its arguments", r.Name, pos, want)
				matched++ // found: the join point exists, this call is what cannot be woven
				return err == nil
			}
			d := callData{Func: r.Join.FunctionCall}
			if w.info != nil {
				d.results, d.typed = resultTypes(call, pf.file, w.info, w.self)
			}
			pre, post, rerr := renderWrap(r.wrap, d)
			if rerr != nil {
				err = w.problem("rule %s: %s: call to %s: advice.wrap-call: %v", r.Name, pos, want, rerr)
				matched++
				return err == nil
			}
			end := pf.fset.Position(call.End())
			// The template may take another branch than the trial render of validation did.
			if _, perr := parser.ParseExpr(pre + string(pf.src[pos.Offset:end.Offset]) + post); perr != nil {
				err = w.problem("rule %s: %s: call to %s: advice.wrap-call does not render a Go expression: %v", r.Name, pos, want, perr)
				matched++
				return err == nil
			}
			matched++
			declHost = pf
			pf.ins = append(pf.ins,
				insertion{off: pos.Offset, key: 1 + idx, text: fmt.Sprintf("/*line gotap-rule-%s.go:1:1*/%s/*line %s:%d:%d*/", r.Name, pre, pos.Filename, pos.Line, pos.Column)},
				insertion{off: end.Offset, key: -1 - idx, text: fmt.Sprintf("/*line gotap-rule-%s.go:1:1*/%s/*line %s:%d:%d*/", r.Name, post, end.Filename, end.Line, end.Column)})
			return true
		})
		if err != nil {
			return 0, nil, "", err
		}
	}
	if declHost == nil && matched > 0 {
		declHost = w.files[0]
	}
	msg := fmt.Sprintf("rule %s: no call to %s in package %s (files: %s)", r.Name, want, r.Join.Package, w.fileList())
	if unresolved > 0 {
		how := "go/types could not resolve them"
		if w.info == nil {
			how = "without type information only package-level functions called as pkg.F(…) or F(…) are resolved"
			if w.typeErr != nil {
				how += fmt.Sprintf("; type-checking failed: %v", w.typeErr)
			}
		}
		msg += fmt.Sprintf("; %d call(s) of something named %s were not resolved (%s)", unresolved, r.callee.name, how)
	}
	return matched, declHost, msg, nil
}

// calledName is the name a call uses for its function: `F` in `F(…)`, `x.F(…)`, `F[T](…)`.
func calledName(call *ast.CallExpr) string {
	fun := ast.Unparen(call.Fun)
	switch x := fun.(type) {
	case *ast.IndexExpr:
		fun = x.X
	case *ast.IndexListExpr:
		fun = x.X
	}
	switch x := fun.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return x.Sel.Name
	}
	return ""
}

func (w *weaving) addFields(r *Rule) (int, *parsedFile, string, error) {
	name := r.Join.StructDefinition
	msg := fmt.Sprintf("rule %s: no type %s in package %s (files: %s)", r.Name, name, r.Join.Package, w.fileList())
	for _, pf := range w.files {
		spec, st := findStruct(pf.file, name)
		if spec == nil {
			continue
		}
		// Found: from here on, what cannot be woven is a problem at this join point (with
		// --best-effort the struct is left as it is).
		if st == nil {
			return 1, pf, msg, w.problem("rule %s: %s: type %s is not a struct type declared in package %s", r.Name, pf.fset.Position(spec.Pos()), name, r.Join.Package)
		}
		for _, other := range w.files {
			if lit := unkeyedLiteral(other.file, name, spec); lit != nil {
				return 1, pf, msg, w.problem("rule %s: %s: a %s literal without field names would lack the added fields", r.Name, other.fset.Position(lit.Pos()), name)
			}
		}
		text, err := fieldsText(r, st, pf.fset)
		if err != nil {
			return 0, nil, "", err
		}
		closing := pf.fset.Position(st.Fields.Closing)
		pf.ins = append(pf.ins, insertion{off: closing.Offset, text: fmt.Sprintf("\n//line gotap-rule-%s.go:1\n%s/*line %s:%d:%d*/", r.Name, text, closing.Filename, closing.Line, closing.Column)})
		return 1, pf, msg, nil
	}
	return 0, nil, msg, nil
}
