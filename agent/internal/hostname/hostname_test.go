package hostname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"short", "app1", true},
		{"fqdn", "App1.Example.com", true},
		{"digits and hyphens", "1-2.x-y", true},
		{"253 characters", strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 61), true},
		{"empty", "", false},
		{"254 characters", strings.Repeat("a.", 127), false},
		{"label of 64", strings.Repeat("a", 64), false},
		{"leading hyphen", "-x", false},
		{"trailing hyphen", "x-.example", false},
		{"empty label", "a..b", false},
		{"trailing dot", "a.b.", false},
		{"underscore", "bad_name", false},
		{"space", "x y", false},
		{"newline", "x\ny", false},
		{"markup", "x<script>", false},
		{"non-ascii", "hôte", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Check(c.in); (err == nil) != c.ok {
				t.Errorf("Check(%q) = %v, want ok %v", c.in, err, c.ok)
			}
		})
	}
}
