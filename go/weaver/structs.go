package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
)

// Struct-definition join points: `struct-definition: T` selects the declaration of struct type T
// in the rule's package; `add-fields` advice appends fields to it (after the existing ones, so
// their offsets do not move).

func checkStruct(r *Rule) error {
	if !identRe.MatchString(r.Join.StructDefinition) {
		return fmt.Errorf("join.struct-definition %q is not a type name", r.Join.StructDefinition)
	}
	seen := map[string]bool{}
	for _, f := range r.Advice.AddFields {
		if !identRe.MatchString(f.Name) || f.Name == "_" {
			return fmt.Errorf("advice.add-fields: %q is not a field name", f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("advice.add-fields: field %s is added twice", f.Name)
		}
		seen[f.Name] = true
		src := fmt.Sprintf("package p\ntype _ struct {\n%s %s\n}\n", f.Name, f.Type)
		if strings.TrimSpace(f.Type) == "" || strings.Contains(f.Type, "\n") {
			return fmt.Errorf("advice.add-fields: field %s needs a one-line type", f.Name)
		}
		if _, err := parser.ParseFile(token.NewFileSet(), "field", src, parser.SkipObjectResolution); err != nil {
			return fmt.Errorf("advice.add-fields: field %s %s does not parse as Go: %v", f.Name, f.Type, err)
		}
	}
	return nil
}

// findStruct finds the declaration of type name in f: the spec, its struct type (nil when the
// type is not a struct).
func findStruct(f *ast.File, name string) (*ast.TypeSpec, *ast.StructType) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, s := range gd.Specs {
			ts := s.(*ast.TypeSpec)
			if ts.Name.Name != name {
				continue
			}
			st, _ := ts.Type.(*ast.StructType)
			if ts.Assign.IsValid() {
				st = nil // an alias: the struct is declared elsewhere
			}
			return ts, st
		}
	}
	return nil, nil
}

// unkeyedLiteral finds a composite literal `T{a, b}` (positional fields) of the package's type
// T in f: adding a field breaks it. Only literals naming T directly are seen; other packages'
// literals are reported by the compiler.
func unkeyedLiteral(f *ast.File, name string, spec *ast.TypeSpec) *ast.CompositeLit {
	var found *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		if found != nil {
			return false
		}
		lit, ok := n.(*ast.CompositeLit)
		if !ok || len(lit.Elts) == 0 {
			return true
		}
		if _, keyed := lit.Elts[0].(*ast.KeyValueExpr); keyed {
			return true
		}
		t := lit.Type
		switch x := t.(type) {
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		}
		id, ok := t.(*ast.Ident)
		if ok && id.Name == name && (id.Obj == nil || id.Obj.Decl == spec) {
			found = lit
		}
		return true
	})
	return found
}

// fieldsText is the advice for one struct: the added fields, each on its own line.
func fieldsText(r *Rule, st *ast.StructType, fset *token.FileSet) (string, error) {
	have := map[string]bool{}
	for _, f := range st.Fields.List {
		for _, n := range f.Names {
			have[n.Name] = true
		}
	}
	var b strings.Builder
	for _, f := range r.Advice.AddFields {
		if have[f.Name] {
			return "", fmt.Errorf("rule %s: %s: struct %s already has a field %s", r.Name, fset.Position(st.Pos()), r.Join.StructDefinition, f.Name)
		}
		fmt.Fprintf(&b, "%s %s\n", f.Name, f.Type)
	}
	return b.String(), nil
}
