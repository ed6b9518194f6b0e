package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// RuleFile is one rules YAML document: a list of rules.
type RuleFile struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is one join point (where) and its advice (what is injected there).
type Rule struct {
	Name   string `yaml:"name"`
	Doc    string `yaml:"doc"`
	Join   Join   `yaml:"join"`
	Advice Advice `yaml:"advice"`

	source string // rules file, for error messages
	recv   string // parsed from Join.FunctionBody: "T", "*T" or "" (plain function)
	fn     string
	prep   *template.Template
	callee *callee            // parsed from Join.FunctionCall
	wrap   *template.Template // Advice.WrapCall
}

// Join selects function bodies: `(*T).M`, `T.M` or `F` in package Package, optionally only for
// toolchains matching Go (space-separated constraints such as ">=1.23 <1.30") and, for a package
// outside the standard library, only when Module (the module providing Package) is at a version in
// Version (semantic-version constraints such as ">=1.60, <2"). Without FunctionBody the rule joins
// the package itself (declarations and added files only). FunctionCall selects, instead, the
// calls made in Package to one function or method (`net/http.Get`, `(*database/sql.DB).Query`),
// and StructDefinition the declaration of one struct type of Package.
type Join struct {
	Package          string `yaml:"package"`
	Go               string `yaml:"go"`
	Module           string `yaml:"module"`
	Version          string `yaml:"version"`
	FunctionBody     string `yaml:"function-body"`
	FunctionCall     string `yaml:"function-call"`
	StructDefinition string `yaml:"struct-definition"`
}

// Advice is Go source: Prepend is a text/template executed per matched function (fields .Recv,
// .Func, methods .Param N / .Result N give the function's own names) and inserted at the top of
// its body; Declarations are added once to the package. AddFiles are whole files compiled into
// the package (paths relative to the rules file): `.go` files go to the compiler, `.s` files
// (Go assembly) are assembled and packed into the package archive by `gotap toolexec`. They may
// use only imports the package already has (the compile step's importcfg lists only those).
//
// WrapCall (function-call join points) is a Go expression template in which {{.Call}}, the
// original call, appears once; AddFields (struct-definition join points) are fields appended to
// the struct.
type Advice struct {
	Prepend      string     `yaml:"prepend"`
	Declarations string     `yaml:"declarations"`
	AddFiles     []string   `yaml:"add-files"`
	WrapCall     string     `yaml:"wrap-call"`
	AddFields    []AddField `yaml:"add-fields"`
}

// AddField is one field added to a struct: `Name Type`.
type AddField struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
}

// addedFiles are the rule's AddFiles as absolute paths.
func (r *Rule) addedFiles() []string {
	var out []string
	for _, f := range r.Advice.AddFiles {
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(r.source), f)
		}
		out = append(out, filepath.Clean(f))
	}
	return out
}

var funcSpec = regexp.MustCompile(`^(?:\((\*?)([A-Za-z_][A-Za-z0-9_]*)\)\.|([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)$`)

func loadRules(paths []string) ([]*Rule, error) {
	var out []*Rule
	seen := map[string]string{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var f RuleFile
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("%s: %v", p, err)
		}
		for i := range f.Rules {
			r := &f.Rules[i]
			r.source = p
			if err := r.validate(); err != nil {
				return nil, fmt.Errorf("%s: rule %q: %v", p, r.Name, err)
			}
			if prev, dup := seen[r.Name]; dup {
				return nil, fmt.Errorf("%s: rule %q is already defined in %s", p, r.Name, prev)
			}
			seen[r.Name] = p
			out = append(out, r)
		}
	}
	return out, nil
}

func (r *Rule) validate() error {
	if r.Name == "" {
		return fmt.Errorf("missing name")
	}
	if r.Join.Package == "" {
		return fmt.Errorf("join.package is required")
	}
	kinds := 0
	for _, k := range []string{r.Join.FunctionBody, r.Join.FunctionCall, r.Join.StructDefinition} {
		if k != "" {
			kinds++
		}
	}
	if kinds > 1 {
		return fmt.Errorf("join: function-body, function-call and struct-definition exclude each other (one join point per rule)")
	}
	if r.Advice.Prepend != "" && r.Join.FunctionBody == "" {
		return fmt.Errorf("advice.prepend needs join.function-body")
	}
	if (r.Advice.WrapCall != "") != (r.Join.FunctionCall != "") {
		return fmt.Errorf("advice.wrap-call and join.function-call go together")
	}
	if (len(r.Advice.AddFields) > 0) != (r.Join.StructDefinition != "") {
		return fmt.Errorf("advice.add-fields and join.struct-definition go together")
	}
	if r.Join.FunctionCall != "" {
		c, err := parseCallee(r.Join.FunctionCall)
		if err != nil {
			return err
		}
		r.callee = c
		if r.wrap, err = parseWrap(r.Name, r.Advice.WrapCall); err != nil {
			return err
		}
	}
	if r.Join.StructDefinition != "" {
		if err := checkStruct(r); err != nil {
			return err
		}
	}
	if r.Join.FunctionBody != "" {
		m := funcSpec.FindStringSubmatch(r.Join.FunctionBody)
		if m == nil {
			return fmt.Errorf("join.function-body %q is not `F`, `T.M` or `(*T).M`", r.Join.FunctionBody)
		}
		switch {
		case m[2] != "":
			r.recv = m[1] + m[2]
		case m[3] != "":
			r.recv = m[3]
		}
		r.fn = m[4]
	}
	if _, err := goConstraint(r.Join.Go); err != nil {
		return err
	}
	if r.Join.Version != "" && r.Join.Module == "" {
		return fmt.Errorf("join.version needs join.module (the module whose version it constrains)")
	}
	if m := r.Join.Module; m != "" {
		if r.Join.Package != m && !strings.HasPrefix(r.Join.Package, m+"/") {
			return fmt.Errorf("join.module %s does not provide package %s (not a prefix of its import path)", m, r.Join.Package)
		}
		if _, err := moduleConstraint(r.Join.Version); err != nil {
			return err
		}
	}
	if r.Advice.Prepend == "" && r.Advice.Declarations == "" && len(r.Advice.AddFiles) == 0 && r.Advice.WrapCall == "" && len(r.Advice.AddFields) == 0 {
		return fmt.Errorf("advice is empty")
	}
	for _, f := range r.addedFiles() {
		ext := filepath.Ext(f)
		if ext != ".go" && ext != ".s" {
			return fmt.Errorf("advice.add-files: %s is neither a .go nor a .s file", f)
		}
		if strings.HasSuffix(f, "_test.go") {
			return fmt.Errorf("advice.add-files: %s is a test file", f)
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("advice.add-files: %v", err)
		}
	}
	t, err := template.New(r.Name).Option("missingkey=error").Parse(r.Advice.Prepend)
	if err != nil {
		return fmt.Errorf("advice.prepend: %v", err)
	}
	r.prep = t
	if err := checkDecls(r.Advice.Declarations); err != nil {
		return fmt.Errorf("advice.declarations do not parse as Go: %v", err)
	}
	return nil
}

// goConstraint parses ">=1.23 <1.30" into a predicate over a toolchain version ("go1.26.8").
func goConstraint(s string) (func(string) bool, error) {
	type cmp struct {
		op string
		v  []int
	}
	var cs []cmp
	for _, f := range strings.Fields(s) {
		i := 0
		for i < len(f) && strings.ContainsRune("<>=!", rune(f[i])) {
			i++
		}
		op := f[:i]
		v, ok := parseVersion(f[i:])
		if !ok || (op != ">=" && op != "<" && op != ">" && op != "<=" && op != "=") {
			return nil, fmt.Errorf("join.go: %q is not a constraint like >=1.23 or <1.30", f)
		}
		cs = append(cs, cmp{op, v})
	}
	return func(gover string) bool {
		v, ok := parseVersion(strings.TrimPrefix(gover, "go"))
		if !ok {
			return false
		}
		for _, c := range cs {
			d := compareVersions(v, c.v)
			switch {
			case c.op == ">=" && d < 0, c.op == ">" && d <= 0, c.op == "<" && d >= 0,
				c.op == "<=" && d > 0, c.op == "=" && d != 0:
				return false
			}
		}
		return true
	}, nil
}

// parseVersion reads "1.26.8" (pre-release suffixes such as "rc1" cut off).
func parseVersion(s string) ([]int, bool) {
	if i := strings.IndexAny(s, "rcbeta-+ "); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return nil, false
	}
	var out []int
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

func compareVersions(a, b []int) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := 0, 0
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}
