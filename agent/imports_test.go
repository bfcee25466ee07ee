package agent

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The layers of the package tree, by import path under the module. A
// package's sub-packages are of its layer unless listed themselves.
var (
	// services and boot steps: they meet in agent (the wiring) and in the
	// foundations, never in each other.
	services = []string{
		"agent/clc", "agent/clcd", "agent/web", "agent/webssh", "agent/osconfig",
		"agent/netconf", "agent/supervisor", "agent/instance", "agent/apps", "agent/api",
	}
	// foundations import no service and nothing of the wiring.
	foundations = []string{
		"agent/accounts", "agent/api/apitypes", "agent/api/client", "agent/apps/apperr", "agent/apps/pack", "agent/backoff", "agent/clc/wire", "agent/clock", "agent/conf",
		"agent/floppy", "agent/internal", "agent/paths", "agent/proc", "agent/script",
		"agent/state", "agent/status", "agent/sysroot", "internal/version",
	}
)

// layer returns "service", "foundation" or "" for a module-relative path.
func layer(rel string) (string, string) {
	best, kind := "", ""
	for _, l := range []struct {
		kind string
		list []string
	}{{"service", services}, {"foundation", foundations}} {
		for _, p := range l.list {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
				best, kind = p, l.kind
			}
		}
	}
	return kind, best
}

// TestImportsRunDown: no service imports another service; no foundation
// imports a service or the wiring; only the wiring reads the path table;
// the production wiring does not link the local controller or the demo;
// osmctl links no agent package at all. Every package under agent/ is in
// one of the lists above, so a new one is placed on purpose.
func TestImportsRunDown(t *testing.T) {
	const module = "osmanager/"
	imports := map[string][]string{} // module-relative, non-test imports
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, top := range []string{"agent", "cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(dir string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			pkg, err := build.ImportDir(dir, 0)
			if err != nil {
				return nil // no Go files
			}
			rel, _ := filepath.Rel(root, dir)
			for _, imp := range pkg.Imports {
				if r, ok := strings.CutPrefix(imp, module); ok {
					imports[filepath.ToSlash(rel)] = append(imports[filepath.ToSlash(rel)], r)
				}
			}
			if _, ok := imports[filepath.ToSlash(rel)]; !ok {
				imports[filepath.ToSlash(rel)] = nil
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(imports["agent"]) == 0 {
		t.Fatal("found no imports of agent: wrong directory?")
	}
	for pkg, imps := range imports {
		kind, own := layer(pkg)
		if strings.HasPrefix(pkg, "agent/") && kind == "" {
			t.Errorf("%s is in no layer: add it to services or foundations in imports_test.go", pkg)
		}
		for _, imp := range imps {
			ikind, iown := layer(imp)
			switch {
			case iown == own && own != "": // itself and its own sub-packages
			case kind == "service" && ikind == "service":
				t.Errorf("service %s imports service %s: they meet in agent or in a foundation", pkg, imp)
			case kind == "foundation" && (ikind == "service" || imp == "agent"):
				t.Errorf("foundation %s imports %s", pkg, imp)
			case imp == "agent/paths" && pkg != "agent":
				t.Errorf("%s imports agent/paths: the wiring fills each package's own files", pkg)
			}
		}
	}
	deps := func(pkg string) []string {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, imp := range imports[p] {
				if !seen[imp] {
					seen[imp] = true
					walk(imp)
				}
			}
		}
		walk(pkg)
		var out []string
		for p := range seen {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	for _, p := range deps("agent") {
		if p == "agent/clcd" || strings.HasPrefix(p, "internal/demo") || strings.HasPrefix(p, "internal/scratch") {
			t.Errorf("the wiring links %s, a tool of the demo", p)
		}
	}
	for _, p := range deps("cmd/osmctl") {
		if kind, _ := layer(p); kind == "service" || p == "agent" {
			t.Errorf("osmctl links %s", p)
		}
	}
}
