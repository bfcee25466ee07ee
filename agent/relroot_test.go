package agent

import (
	"testing"

	"osmanager/agent/state"
)

// TestBootRelativeRoot: `osmanager boot --root LuoYun --sysroot sysroot
// --floppy floppy.img`, paths relative to the working directory, runs
// every step, the config script among them (it failed with "no such
// file": the script was exec'd by its relative path from its own dir).
func TestBootRelativeRoot(t *testing.T) {
	dir := demoDir(t)
	t.Chdir(dir)
	o, _ := testOptions(t, ".")
	o.Floppy, o.Root, o.Sysroot = "floppy.img", "LuoYun", "sysroot"
	a, err := bootOnce(t, o)
	if err != nil {
		t.Fatalf("boot with relative paths: %v", err)
	}
	for _, s := range a.State().Steps() {
		if s.Status == state.StepFailed {
			t.Errorf("step %s failed: %s", s.Name, s.Error)
		}
		if s.Name == "script" && s.Status != state.StepOK {
			t.Errorf("script step %s (%s), want ok", s.Status, s.Note)
		}
	}
}
