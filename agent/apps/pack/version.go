package pack

import (
	"strconv"
	"strings"
)

// CompareVersions orders two versions: -1, 0 or +1. When both are
// semantic versions (semver.org 2.0: MAJOR.MINOR.PATCH with an optional
// -prerelease and +build, no "v" prefix) they are compared by semver
// precedence, with the build part compared as a string last so the order
// is total (1.0.0 < 1.0.0+b1 < 1.0.1-rc.1 < 1.0.1). Otherwise they are
// compared as byte strings (so "10" < "9": use semver to get numeric
// order). Equal strings are the only versions that compare 0.
func CompareVersions(a, b string) int {
	sa, oka := parseSemver(a)
	sb, okb := parseSemver(b)
	if !oka || !okb {
		return strings.Compare(a, b)
	}
	for i := range 3 {
		if c := cmpNum(sa.core[i], sb.core[i]); c != 0 {
			return c
		}
	}
	if c := cmpPre(sa.pre, sb.pre); c != 0 {
		return c
	}
	return strings.Compare(sa.build, sb.build)
}

type semver struct {
	core       [3]string
	pre, build string
}

func parseSemver(v string) (semver, bool) {
	var s semver
	v, build, hasBuild := strings.Cut(v, "+")
	v, pre, hasPre := strings.Cut(v, "-")
	if (hasBuild && build == "") || (hasPre && pre == "") {
		return s, false
	}
	s.pre, s.build = pre, build
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return s, false
	}
	for i, p := range parts {
		if !isNum(p) {
			return s, false
		}
		s.core[i] = p
	}
	for _, ids := range []string{s.pre, s.build} {
		if ids == "" {
			continue
		}
		for _, id := range strings.Split(ids, ".") {
			if id == "" || strings.Trim(id, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
				return s, false
			}
		}
	}
	for _, id := range strings.Split(s.pre, ".") {
		if len(id) > 1 && id[0] == '0' && strings.Trim(id, "0123456789") == "" {
			return s, false // numeric identifiers have no leading zero
		}
	}
	return s, true
}

// isNum: a numeric identifier without leading zeros.
func isNum(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	return strings.Trim(p, "0123456789") == ""
}

func cmpNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// cmpPre compares pre-release parts: none ranks above any.
func cmpPre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		_, ea := strconv.ParseUint(pa[i], 10, 64)
		_, eb := strconv.ParseUint(pb[i], 10, 64)
		na, nb := ea == nil || isDigits(pa[i]), eb == nil || isDigits(pb[i])
		var c int
		switch {
		case na && nb:
			c = cmpNum(pa[i], pb[i])
		case na:
			c = -1
		case nb:
			c = 1
		default:
			c = strings.Compare(pa[i], pb[i])
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(pa) < len(pb):
		return -1
	case len(pa) > len(pb):
		return 1
	}
	return 0
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
