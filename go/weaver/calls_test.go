package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCallee(t *testing.T) {
	for in, want := range map[string]string{
		"net/http.Get":                   "net/http.Get",
		"(*database/sql.DB).Query":       "(*database/sql.DB).Query",
		"(time.Time).Format":             "(time.Time).Format",
		"gopkg.in/yaml.v3.Marshal":       "gopkg.in/yaml.v3.Marshal",
		"(*github.com/a/b.v2.Client).Do": "(*github.com/a/b.v2.Client).Do",
	} {
		c, err := parseCallee(in)
		if err != nil || c.full() != want {
			t.Errorf("%s: %v %v", in, c, err)
		}
	}
	for _, bad := range []string{"Get", "net/http.", "(*net/http).Get", "(*net/http.Client).", "net/http.Get()"} {
		if _, err := parseCallee(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if got := stripTypeArgs("(*example.com/l.List[T, map[K]V]).Push"); got != "(*example.com/l.List).Push" {
		t.Error(got)
	}
}

// weaveAndRun weaves main.go with rules (type information from `go list -export` when typed)
// and runs the result.
func weaveAndRun(t *testing.T, src, rules string, typed bool, imports ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("go.mod", "module example.com/run\n\ngo 1.23\n")
	mainGo := write("main.go", src)
	rulesPath := write("rules.yaml", rules)
	cfg := ""
	if typed {
		cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-f", "{{if .Export}}packagefile {{.ImportPath}}={{.Export}}{{end}}"}, imports...)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -export: %v", err)
		}
		cfg = write("importcfg", string(out))
	}
	rs, err := loadRules([]string{rulesPath})
	if err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	os.Mkdir(outDir, 0o755)
	files, warnings, _, err := weave(rs, []string{mainGo}, outDir, false, "main", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatal(warnings)
	}
	woven, _ := os.ReadFile(files[mainGo])
	os.WriteFile(filepath.Join(outDir, "go.mod"), []byte("module example.com/run\n\ngo 1.23\n"), 0o644)
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = outDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("woven program: %v\n%s\n%s", err, stderr.String(), woven)
	}
	return string(out), string(woven)
}

// Arguments are evaluated once, in their original order relative to the advice and to the
// rest of the expression; multi-value results pass through; of two rules on one call, the
// first wraps the second.
func TestWrapCallEvaluationOrder(t *testing.T) {
	src := `package main

import (
	"fmt"
	"strconv"
)

var log []string

func arg(s string) string { log = append(log, "arg "+s); return s }

func main() {
	n, err := strconv.Atoi(arg("1"))
	x := len(strconv.Quote(arg("a"))) + len(strconv.Quote(strconv.Quote(arg("b"))))
	fmt.Println(n, err, x, log)
}
`
	rules := `rules:
  - name: atoi
    join: {package: main, function-call: strconv.Atoi}
    advice:
      wrap-call: after({{.Call}})
      declarations: |
        func after[T any](v T, err error) (T, error) { log = append(log, "after atoi"); return v, err }
  - name: quote
    join: {package: main, function-call: strconv.Quote}
    advice:
      wrap-call: 'func() string { log = append(log, "before quote"); return {{.Call}} }()'
  - name: quote-inner
    join: {package: main, function-call: strconv.Quote}
    advice:
      wrap-call: 'func() string { log = append(log, "inner"); return {{.Call}} }()'
`
	out, _ := weaveAndRun(t, src, rules, false)
	want := "1 <nil> 10 [arg 1 after atoi before quote inner arg a before quote inner before quote inner arg b]\n"
	if out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
}

// With type information: methods (pointer and value receivers, promoted through embedding,
// generic types), and {{.Results}} written with the file's import names.
func TestWrapCallTyped(t *testing.T) {
	src := `package main

import (
	"fmt"
	str "strings"
	"time"
)

type List[T any] struct{ items []T }

func (l *List[T]) Push(v T) int { l.items = append(l.items, v); return len(l.items) }

type wrapped struct{ *str.Builder }

func main() {
	var b wrapped
	b.Builder = &str.Builder{}
	b.WriteString("hi")
	var l List[string]
	l.Push("x")
	d := time.Duration(90) * time.Second
	fmt.Println(b.String(), l.Push("y"), d.String(), str.NewReplacer("a", "b").Replace("abc"))
}
`
	rules := `rules:
  - name: write
    join: {package: main, function-call: (*strings.Builder).WriteString}
    advice:
      wrap-call: 'func() {{.Results}} { fmt.Print("write ") ; return {{.Call}} }()'
  - name: push
    join: {package: main, function-call: (*main.List).Push}
    advice:
      wrap-call: 'func() {{.Results}} { fmt.Print("push ") ; return {{.Call}} }()'
  - name: dur
    join: {package: main, function-call: (time.Duration).String}
    advice:
      wrap-call: '"[" + {{.Call}} + "]"'
  - name: replacer
    join: {package: main, function-call: strings.NewReplacer}
    advice:
      wrap-call: 'func() {{.Results}} { fmt.Print("replacer ") ; return {{.Call}} }()'
`
	out, woven := weaveAndRun(t, src, rules, true, "fmt", "strings", "time")
	want := "write push push replacer hi 2 [1m30s] bbc\n"
	if out != want {
		t.Errorf("got  %q\nwant %q\n%s", out, want, woven)
	}
	if !strings.Contains(woven, "func() *str.Replacer {") {
		t.Errorf("result type not written with the file's import name:\n%s", woven)
	}
}

// A template that needs the result types, without type information: an error naming the rule
// and the call's position; with best effort a warning and the call left as written.
func TestWrapCallResultsNeedTypes(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.go")
	os.WriteFile(src, []byte("package a\n\nimport \"strconv\"\n\nvar N, E = strconv.Atoi(\"1\")\n"), 0o644)
	rules := filepath.Join(dir, "r.yaml")
	os.WriteFile(rules, []byte("rules:\n  - name: r\n    join: {package: a, function-call: strconv.Atoi}\n    advice: {wrap-call: 'func() {{.Results}} { return {{.Call}} }()'}\n"), 0o644)
	rs, err := loadRules([]string{rules})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = weave(rs, []string{src}, dir, false, "a", "")
	if err == nil || !strings.Contains(err.Error(), "rule r: "+src+":5:12: call to strconv.Atoi: advice.wrap-call: ") || !strings.Contains(err.Error(), "result types are unknown") {
		t.Fatalf("%v", err)
	}
	files, warnings, _, err := weave(rs, []string{src}, dir, true, "a", "")
	if err != nil || len(files) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "(--best-effort)") {
		t.Fatalf("%v %v %v", files, warnings, err)
	}
}
