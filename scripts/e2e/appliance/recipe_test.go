package appliance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestRecipeHash: the cache key of the host-arch images is what it was
// before recipes had an arch (their cached images stay valid), and the
// arm64 image's key differs from the systemd image's it is made like.
func TestRecipeHash(t *testing.T) {
	src := filepath.Join(t.TempDir(), "debian.sources")
	if err := os.WriteFile(src, []byte("Types: deb\nURIs: http://deb.debian.org/debian\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sources := []string{src}
	sd := systemdRecipe()
	got, err := sd.hash(sources)
	if err != nil {
		t.Fatal(err)
	}
	// The key as it was made before recipe.Arch and recipe.Essential.
	h := sha256.New()
	fmt.Fprintf(h, "v%s\n%s\n%s\n%q\n%q\n", recipeVersion, sd.Name, sd.Suite, sd.Packages, sd.Hooks)
	b, _ := os.ReadFile(src)
	fmt.Fprintf(h, "%s %d\n", src, len(b))
	h.Write(b)
	if want := hex.EncodeToString(h.Sum(nil))[:16]; got != want {
		t.Errorf("systemd hash %s, want %s (the cached images' names)", got, want)
	}
	arm, err := arm64Recipe().hash(sources)
	if err != nil {
		t.Fatal(err)
	}
	if arm == got {
		t.Errorf("arm64 and systemd recipes share the cache key %s", arm)
	}
	withEssential := arm64Recipe()
	withEssential.Essential = nil
	if h, _ := withEssential.hash(sources); h == arm {
		t.Error("the arm64 recipe's essential hooks are not in its cache key")
	}
}
