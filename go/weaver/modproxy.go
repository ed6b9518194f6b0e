package main

import (
	"archive/zip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// modproxy writes module MODULE@VERSION, from the module directory DIR, into the file-based
// module proxy rooted at PROXY (GOPROXY=file://PROXY): <module>/@v/<version>.{info,mod,zip} and
// list. gotap serves its runtime this way so that woven binaries record
// `dep gotap.dev/gotaprt <version> h1:…` in their build info instead of a `replace` by a path of
// the machine that built them.
//
//	weaver modproxy -module M -version V -dir DIR -proxy PROXY
func modproxy(args []string) error {
	fl := flag.NewFlagSet("modproxy", flag.ContinueOnError)
	module := fl.String("module", "", "module path")
	version := fl.String("version", "", "module version")
	dir := fl.String("dir", "", "module directory")
	proxy := fl.String("proxy", "", "proxy root")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *module == "" || *version == "" || *dir == "" || *proxy == "" {
		return fmt.Errorf("modproxy: -module, -version, -dir and -proxy are required")
	}
	// The proxy protocol escapes upper-case letters; gotap's module path has none.
	if strings.ToLower(*module) != *module || strings.ToLower(*version) != *version {
		return fmt.Errorf("modproxy: %s@%s needs case escaping, not supported", *module, *version)
	}
	vdir := filepath.Join(*proxy, filepath.FromSlash(*module), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(*dir, "go.mod"))
	if err != nil {
		return err
	}
	// Written under temporary names and renamed: a concurrent gotap never reads half a file,
	// and the zip (the file the go command fetches last) appears last.
	write := func(name string, fill func(io.Writer) error) error {
		tmp, err := os.CreateTemp(vdir, ".tmp-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if err := fill(tmp); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(vdir, name))
	}
	if err := write(*version+".mod", func(w io.Writer) error { _, err := w.Write(gomod); return err }); err != nil {
		return err
	}
	// A fixed time: the same runtime gives the same proxy files on every machine.
	info, _ := json.Marshal(map[string]string{"Version": *version, "Time": "2020-01-01T00:00:00Z"})
	if err := write(*version+".info", func(w io.Writer) error { _, err := w.Write(info); return err }); err != nil {
		return err
	}
	if err := write(*version+".zip", func(w io.Writer) error { return zipModule(w, *dir, *module+"@"+*version) }); err != nil {
		return err
	}
	return write("list", func(w io.Writer) error { _, err := io.WriteString(w, *version+"\n"); return err })
}

// zipModule writes the module zip of dir: every regular file, named prefix/<path>, except those
// of nested modules (directories with their own go.mod) and of vendor directories, as the go
// command's own module zips.
func zipModule(w io.Writer, dir, prefix string) error {
	zw := zip.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel != "." {
				if d.Name() == "vendor" || d.Name() == ".git" {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := zw.Create(path.Join(prefix, filepath.ToSlash(rel)))
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return zw.Close()
}
