package scratch

import (
	"os"
	"path/filepath"
	"testing"

	"osmanager/agent/conf"
	"osmanager/agent/floppy"
)

// TestMake: the layout holds a system root, a LuoYun dir with executable
// scripts, and a node-layout floppy whose luoyun.ini parses cleanly and
// sets the demo password.
func TestMake(t *testing.T) {
	dir := t.TempDir()
	img, err := Make(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		exec bool
	}{
		{"sysroot/etc/shadow", false}, {"sysroot/etc/passwd", false}, {"sysroot/etc/hosts", false},
		{"LuoYun/build/VERSION", false}, {"LuoYun/custom/scripts/config", true}, {"LuoYun/custom/scripts/status", true},
	} {
		t.Run(f.name, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm()&0o100 != 0; got != f.exec {
				t.Errorf("executable %v, want %v", got, f.exec)
			}
		})
	}
	ini, err := floppy.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	c, err := conf.Parse(ini)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Problems) > 0 || !c.HasTag || c.Payload.PasswdHash == nil || *c.Payload.PasswdHash != PasswordHash {
		t.Errorf("config: problems %v, has TAG %v, hash set %v: want TAG, the demo hash and no problems", c.Problems, c.HasTag, c.Payload.PasswdHash != nil)
	}
}
