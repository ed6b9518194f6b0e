package main

import (
	"bytes"
	"fmt"
	"os"
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
}

// Join selects function bodies: `(*T).M`, `T.M` or `F` in package Package, optionally only for
// toolchains matching Go (space-separated constraints such as ">=1.23 <1.30").
type Join struct {
	Package      string `yaml:"package"`
	Go           string `yaml:"go"`
	FunctionBody string `yaml:"function-body"`
}

// Advice is Go source: Prepend is a text/template executed per matched function (fields .Recv,
// .Func, methods .Param N / .Result N give the function's own names) and inserted at the top of
// its body; Declarations are added once to the package.
type Advice struct {
	Prepend      string `yaml:"prepend"`
	Declarations string `yaml:"declarations"`
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
	if _, err := goConstraint(r.Join.Go); err != nil {
		return err
	}
	if r.Advice.Prepend == "" && r.Advice.Declarations == "" {
		return fmt.Errorf("advice is empty")
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
