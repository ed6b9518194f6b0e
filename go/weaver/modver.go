package main

import (
	"fmt"
	"strconv"
	"strings"
)

// Module version ranges (join.version). Module versions are semantic versions as the go command
// reports them (v1.83.2, v1.2.0-rc.1, pseudo-versions v0.0.0-20260101000000-abcdef123456,
// v2.0.0+incompatible). golang.org/x/mod/semver would do the comparison, but its current releases
// need go 1.26 while the weaver must build with every toolchain gotap supports (go 1.23 and up):
// the ~60 lines below follow semver.org precedence, as x/mod does.

type semver struct {
	nums [3]int
	pre  []string // dot-separated pre-release identifiers; nil for a release
}

// parseSemver reads v1.2.3-pre+build; "1.60" and "v2" are shorthands for v1.60.0 and v2.0.0.
func parseSemver(s string) (semver, bool) {
	var v semver
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // build metadata has no precedence
	}
	core := s
	if i := strings.IndexByte(s, '-'); i >= 0 {
		core = s[:i]
		if s[i+1:] == "" {
			return v, false
		}
		v.pre = strings.Split(s[i+1:], ".")
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return v, false
		}
		v.nums[i] = n
	}
	return v, true
}

func compareSemver(a, b semver) int {
	for i := range a.nums {
		if a.nums[i] != b.nums[i] {
			return sign(a.nums[i] - b.nums[i])
		}
	}
	switch {
	case a.pre == nil && b.pre == nil:
		return 0
	case a.pre == nil:
		return 1 // a release is newer than its pre-releases
	case b.pre == nil:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		if x == y {
			continue
		}
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil:
			return sign(nx - ny)
		case ex == nil:
			return -1 // numeric identifiers sort before alphanumeric ones
		case ey == nil:
			return 1
		case x < y:
			return -1
		default:
			return 1
		}
	}
	return sign(len(a.pre) - len(b.pre))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// moduleConstraint parses ">=1.60, <2" (constraints separated by commas and/or spaces, all of which
// must hold; operators >=, >, <, <=, =) into a predicate over a module version. An empty range
// accepts every version.
func moduleConstraint(s string) (func(string) bool, error) {
	type cmp struct {
		op string
		v  semver
	}
	var cs []cmp
	toks := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if strings.Trim(t, "<>=") == "" && i+1 < len(toks) {
			// ">= 1.60": operator and version written apart.
			i++
			t += toks[i]
		}
		j := 0
		for j < len(t) && strings.ContainsRune("<>=!", rune(t[j])) {
			j++
		}
		op := t[:j]
		if op == "" {
			op = "="
		}
		v, ok := parseSemver(t[j:])
		if !ok || (op != ">=" && op != "<" && op != ">" && op != "<=" && op != "=") {
			return nil, fmt.Errorf("join.version: %q is not a constraint like >=1.60 or <2", t)
		}
		cs = append(cs, cmp{op, v})
	}
	return func(version string) bool {
		v, ok := parseSemver(version)
		if !ok {
			return false
		}
		for _, c := range cs {
			d := compareSemver(v, c.v)
			switch {
			case c.op == ">=" && d < 0, c.op == ">" && d <= 0, c.op == "<" && d >= 0,
				c.op == "<=" && d > 0, c.op == "=" && d != 0:
				return false
			}
		}
		return true
	}, nil
}

// moduleVersions is `-modver path=version` (repeatable): the version of each module the build
// uses, as `gotap build` resolved it (go list -m) or `gotap toolexec` read it from the module
// cache path of the compiled files. An empty version means the module is in the build but its
// version is not known (replaced by a directory).
type moduleVersions map[string]string

func (m moduleVersions) String() string { return fmt.Sprint(map[string]string(m)) }

func (m moduleVersions) Set(s string) error {
	path, v, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return fmt.Errorf("-modver wants module=version, got %q", s)
	}
	m[path] = v
	return nil
}

// skip is a module whose version matches none of the version-scoped rules one rules file has
// for it: those rules are left out, and gotap build reports it once. Rules for one join point in
// several versions of a library are written as several rules with disjoint ranges in one file;
// while one of a file's rules for a module applies, the others are taken to be such alternatives
// and are skipped silently.
type skip struct {
	Rule    string `json:"rule"` // the rules left out, comma-separated
	Module  string `json:"module"`
	Version string `json:"version"`
	Message string `json:"message"`
}

// moduleCheck decides whether rule r applies given the module versions. resolved says that mods
// lists every module of the build: a constrained module missing from it is not built at all (the
// rule is inactive). When not resolved, a missing module is left to `apply`, which is always
// given the version of the package it weaves. skipped is true when the rule is left out because
// of the version (out of range, or unknown).
func moduleCheck(r *Rule, mods moduleVersions, resolved bool) (ok, skipped bool) {
	m := r.Join.Module
	if m == "" || r.Join.Version == "" {
		return true, false
	}
	v, known := mods[m]
	if !known {
		return !resolved, false
	}
	in, _ := moduleConstraint(r.Join.Version)
	if v == "" || !in(v) {
		return false, true
	}
	return true, false
}

// summarize turns the rules skipped for their module's version into one report per module whose
// version no rule accepts.
func summarize(skipped []*Rule, applied []*Rule, mods moduleVersions) []skip {
	out := []skip{}
	group := func(r *Rule) string { return r.source + "\x00" + r.Join.Module }
	covered := map[string]bool{}
	for _, r := range applied {
		covered[group(r)] = true
	}
	byGroup := map[string][]*Rule{}
	var order []string
	for _, r := range skipped {
		g := group(r)
		if covered[g] {
			continue
		}
		if byGroup[g] == nil {
			order = append(order, g)
		}
		byGroup[g] = append(byGroup[g], r)
	}
	for _, g := range order {
		m := byGroup[g][0].Join.Module
		var names, ranges []string
		for _, r := range byGroup[g] {
			names = append(names, r.Name)
			ranges = append(ranges, fmt.Sprintf("%s (%s)", r.Name, r.Join.Version))
		}
		v := mods[m]
		msg := fmt.Sprintf("rules not applied: %s; module %s is at %s, outside their version ranges", strings.Join(ranges, ", "), m, v)
		if v == "" {
			msg = fmt.Sprintf("rules not applied: %s; the version of module %s is unknown (replaced by a directory?)", strings.Join(names, ", "), m)
		}
		out = append(out, skip{Rule: strings.Join(names, ", "), Module: m, Version: v, Message: msg})
	}
	return out
}
