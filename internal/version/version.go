// Package version holds osmanager's version. It imports nothing of the
// agent, so a small binary (osmctl) can print the version without linking
// the services.
//
// scripts/build stamps the release version from build/VERSION at link time:
//
//	-ldflags "-X osmanager/internal/version.stamped=0.1.0"
//
// A binary built without it (go run, go build, go test) reports "dev",
// with the commit when the go command recorded one ("dev+0e0adf3c1d2e",
// "-dirty" for a modified tree), so such a build is never mistaken for a
// release.
package version

import (
	"runtime/debug"
	"strings"
)

// stamped is set by the linker (-X); empty in an unstamped build.
var stamped string

// String returns the version: the stamped one, else a development version.
func String() string {
	if stamped != "" {
		return stamped
	}
	bi, _ := debug.ReadBuildInfo()
	return dev(bi)
}

// dev builds the version of an unstamped binary from its build info.
func dev(bi *debug.BuildInfo) string {
	if bi == nil {
		return "dev"
	}
	// go install osmanager@v1.2.3 records the module's version.
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return "dev+" + rev[:min(12, len(rev))] + dirty
}
