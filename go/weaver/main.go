// weaver rewrites Go source for `gotap build`. gotap (Rust) builds it once per toolchain and
// calls it from `gotap toolexec` for each package a rule targets; it is Go so that Go source is
// parsed by go/parser itself, never by an approximation of the grammar.
//
//	weaver plan  -go VERSION -salt S [-runtime DIR] [-modver M=V]... [-modules-resolved] RULES.yaml...
//	    validates the rules; prints {"hash": …, "packages": [import paths the rules target],
//	    "modules": [modules whose version some rule constrains], "skipped": [rules whose module
//	    is outside their version range, with a message]}
//	weaver apply -go VERSION -pkg IMPORTPATH -out DIR [-best-effort] [-importcfg FILE] [-modver M=V]... RULES.yaml... -- FILE.go...
//	    rewrites the files of IMPORTPATH; prints {"files": {original: rewritten}, "warnings": […],
//	    "added": [files the rules add to the package], "skipped": […]}
//	weaver modproxy -module M -version V -dir DIR -proxy PROXY
//	    writes module M@V from DIR into a file-based module proxy (modproxy.go)
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: weaver plan|apply …"))
	}
	var err error
	switch os.Args[1] {
	case "plan":
		err = plan(os.Args[2:])
	case "apply":
		err = apply(os.Args[2:])
	case "modproxy":
		err = modproxy(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// active keeps the rules that apply to this toolchain and these module versions; skipped reports
// the modules whose version matches none of their rules' ranges (see summarize).
func active(rules []*Rule, gover string, mods moduleVersions, resolved bool) (out []*Rule, skipped []skip) {
	var left []*Rule
	for _, r := range rules {
		ok, _ := goConstraint(r.Join.Go)
		if !ok(gover) {
			continue
		}
		in, sk := moduleCheck(r, mods, resolved)
		if sk {
			left = append(left, r)
		}
		if in {
			out = append(out, r)
		}
	}
	return out, summarize(left, out, mods)
}

// constrainedModules lists the modules whose version some rule for this toolchain constrains.
func constrainedModules(rules []*Rule, gover string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, r := range rules {
		ok, _ := goConstraint(r.Join.Go)
		if ok(gover) && r.Join.Module != "" && r.Join.Version != "" && !seen[r.Join.Module] {
			seen[r.Join.Module] = true
			out = append(out, r.Join.Module)
		}
	}
	return out
}

func plan(args []string) error {
	fl := flag.NewFlagSet("plan", flag.ContinueOnError)
	gover := fl.String("go", "", "toolchain version (go1.26.8)")
	salt := fl.String("salt", "", "mixed into the hash (gotap version)")
	runtimeDir := fl.String("runtime", "", "runtime sources to mix into the hash")
	mods := moduleVersions{}
	fl.Var(mods, "modver", "module=version of a module in the build (repeatable)")
	resolved := fl.Bool("modules-resolved", false, "-modver lists every constrained module of the build")
	if err := fl.Parse(args); err != nil {
		return err
	}
	rules, err := loadRules(fl.Args())
	if err != nil {
		return err
	}
	h := sha256.New()
	io.WriteString(h, *salt+"\x00"+*gover+"\x00")
	for _, p := range fl.Args() {
		b, _ := os.ReadFile(p)
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	if *runtimeDir != "" {
		var files []string
		err := filepath.WalkDir(*runtimeDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return err
		}
		sort.Strings(files)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(*runtimeDir, p)
			fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
			h.Write(b)
		}
	}
	mine, skipped := active(rules, *gover, mods, *resolved)
	// Files the active rules add are compiled into the target package: part of the key.
	for _, r := range mine {
		for _, p := range r.addedFiles() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(p), len(b))
			h.Write(b)
		}
	}
	pkgs := []string{}
	seen := map[string]bool{}
	for _, r := range mine {
		if !seen[r.Join.Package] {
			seen[r.Join.Package] = true
			pkgs = append(pkgs, r.Join.Package)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"hash":     hex.EncodeToString(h.Sum(nil))[:24],
		"packages": pkgs,
		"modules":  constrainedModules(rules, *gover),
		"skipped":  skipped,
	})
}

func apply(args []string) error {
	fl := flag.NewFlagSet("apply", flag.ContinueOnError)
	gover := fl.String("go", "", "toolchain version (go1.26.8)")
	pkg := fl.String("pkg", "", "import path of the package being compiled")
	out := fl.String("out", "", "directory for rewritten files")
	bestEffort := fl.Bool("best-effort", false, "a join point that cannot be woven is a warning, not an error")
	importcfg := fl.String("importcfg", "", "the compile step's importcfg: type information for resolving call sites")
	mods := moduleVersions{}
	fl.Var(mods, "modver", "module=version of the module providing the package (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	rest := fl.Args()
	var ruleFiles, goFiles []string
	for i, a := range rest {
		if a == "--" {
			ruleFiles, goFiles = rest[:i], rest[i+1:]
			break
		}
	}
	rules, err := loadRules(ruleFiles)
	if err != nil {
		return err
	}
	// Resolved: a rule whose module version was not given is not applied (and reported).
	var forPkg []*Rule
	for _, r := range rules {
		if r.Join.Package == *pkg {
			forPkg = append(forPkg, r)
			if _, ok := mods[r.Join.Module]; r.Join.Module != "" && !ok {
				mods[r.Join.Module] = ""
			}
		}
	}
	mine, skipped := active(forPkg, *gover, mods, true)
	files, warnings, added, err := weave(mine, goFiles, *out, *bestEffort, *pkg, *importcfg)
	if err != nil {
		return err
	}
	if warnings == nil {
		warnings = []string{}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"files": files, "warnings": warnings, "added": added, "skipped": skipped})
}
