// grpcoffsets prints, as JSON, the offsets of struct fields read from a Go binary's DWARF:
// scripts/gen-grpc-offsets.sh builds a small program against each grpc version and asks this
// tool for the fields instrumentations/grpc/ebpf.rs reads (ALL_FIELDS).
//
//	grpcoffsets BINARY STRUCT.FIELD...
//	grpcoffsets -merge < measurements > table.json
//
// Output: {"STRUCT.FIELD": offset or null (no such field, or no such struct, in this version)}.
//
// -merge reads lines "MODULE VERSION {json}" (one measurement of a module's fields at a version,
// as the first form prints them for that module's structs) and writes the table
// crates/gotap-binary/offsets/grpc.json: per module, consecutive measured versions with the same
// layout become one row {module, from, to, fields}.
package main

import (
	"bufio"
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-merge" {
		merge()
		return
	}
	if len(os.Args) < 3 {
		fail("usage: grpcoffsets BINARY STRUCT.FIELD...")
	}
	f, err := elf.Open(os.Args[1])
	if err != nil {
		fail(err.Error())
	}
	d, err := f.DWARF()
	if err != nil {
		fail(err.Error())
	}
	want := map[string]map[string]bool{}
	for _, sf := range os.Args[2:] {
		i := strings.LastIndex(sf, ".")
		if i < 0 {
			fail("not STRUCT.FIELD: " + sf)
		}
		s, fl := sf[:i], sf[i+1:]
		if want[s] == nil {
			want[s] = map[string]bool{}
		}
		want[s][fl] = true
	}
	found := map[string]map[string]int64{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			fail(err.Error())
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			if e.Children && e.Tag != dwarf.TagCompileUnit {
				r.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		if want[name] == nil || found[name] != nil {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		members := map[string]int64{}
		for e.Children {
			m, err := r.Next()
			if err != nil {
				fail(err.Error())
			}
			if m == nil || m.Tag == 0 {
				break
			}
			if m.Tag == dwarf.TagMember {
				mn, _ := m.Val(dwarf.AttrName).(string)
				if off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64); ok {
					members[mn] = off
				}
			}
			if m.Children {
				r.SkipChildren()
			}
		}
		found[name] = members
	}
	out := map[string]*int64{}
	for s, fields := range want {
		members := found[s] // a struct of other versions only (ServerStream before 1.69): all null
		for fl := range fields {
			if off, ok := members[fl]; ok {
				o := off
				out[s+"."+fl] = &o
			} else {
				out[s+"."+fl] = nil
			}
		}
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "grpcoffsets:", msg)
	os.Exit(1)
}

type row struct {
	Module string            `json:"module"`
	From   string            `json:"from"`
	To     string            `json:"to"`
	Fields map[string]*int64 `json:"fields"`
}

// semver orders release versions and pseudo-versions (before their base's release).
func semver(v string) [4]int {
	v = strings.TrimPrefix(v, "v")
	pre := 1
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v, pre = v[:i], 0
	}
	var out [4]int
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	out[3] = pre
	return out
}

func less(a, b string) bool {
	x, y := semver(a), semver(b)
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return a < b
}

func merge() {
	byModule := map[string]map[string]map[string]*int64{}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(strings.TrimSpace(sc.Text()), " ", 3)
		if len(parts) != 3 {
			continue
		}
		var fields map[string]*int64
		if err := json.Unmarshal([]byte(parts[2]), &fields); err != nil {
			fail("bad measurement: " + sc.Text())
		}
		if byModule[parts[0]] == nil {
			byModule[parts[0]] = map[string]map[string]*int64{}
		}
		byModule[parts[0]][parts[1]] = fields
	}
	var modules []string
	for m := range byModule {
		modules = append(modules, m)
	}
	sort.Strings(modules)
	rows := []row{}
	for _, m := range modules {
		var versions []string
		for v := range byModule[m] {
			versions = append(versions, v)
		}
		sort.Slice(versions, func(i, j int) bool { return less(versions[i], versions[j]) })
		for _, v := range versions {
			f := byModule[m][v]
			if n := len(rows); n > 0 && rows[n-1].Module == m && same(rows[n-1].Fields, f) {
				rows[n-1].To = v
				continue
			}
			rows = append(rows, row{Module: m, From: v, To: v, Fields: f})
		}
	}
	var buf bytes.Buffer
	buf.WriteString("{\"rows\": [\n")
	for i, r := range rows {
		b, _ := json.Marshal(r) // map keys come out sorted
		buf.Write(b)
		if i < len(rows)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString("]}\n")
	os.Stdout.Write(buf.Bytes())
}

func same(a, b map[string]*int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || (x == nil) != (y == nil) || (x != nil && *x != *y) {
			return false
		}
	}
	return true
}
