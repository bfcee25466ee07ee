// Package hostname checks host names: the one RFC 1123 rule that the
// host-name step (agent/osconfig) and the status page (agent/web) both
// apply, so a name one of them refuses is never used by the other.
package hostname

import (
	"fmt"
	"strings"
)

// Check accepts an RFC 1123 host or domain name: 1 to 253 characters,
// dot-separated labels of 1 to 63 ASCII letters, digits and '-', no label
// beginning or ending with '-'. Nothing else (no trailing dot, no '_', no
// non-ASCII) passes, so a checked name is safe in any text it is put in.
func Check(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host name %q: want 1 to 253 characters", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name %q: bad label %q", name, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host name %q: character %q not allowed", name, c)
			}
		}
	}
	return nil
}
