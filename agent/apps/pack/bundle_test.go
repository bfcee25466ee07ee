package pack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"osmanager/agent/apps/apperr"
	"osmanager/agent/apps/pack/packtest"
)

func TestExtractBundle(t *testing.T) {
	rootfs := []E{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Body: "elf", Mode: 0o755},
		{Name: "bin/sleep", Type: tar.TypeSymlink, Link: "busybox"},
		{Name: "bin/sh", Type: tar.TypeSymlink, Link: "/bin/busybox"},          // absolute: resolved in the container
		{Name: "etc/mtab", Type: tar.TypeSymlink, Link: "/proc/self/mounts"},   // dangling here
		{Name: "usr/lib64", Type: tar.TypeSymlink, Link: "../../../../../lib"}, // climbs: stops at the container's /
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
		{Name: "bin/ls", Type: tar.TypeLink, Link: "app/rootfs/bin/busybox"},
	}
	for _, tc := range []struct {
		name        string
		cfg         string
		version     string
		restart     Restart
		stopTimeout time.Duration
	}{
		{"no annotations", packtest.BundleConfig([]string{"/bin/sleep", "1000"}), "0", DefaultRestart, DefaultStopTimeout},
		{"annotations", packtest.BundleConfig([]string{"sleep", "1"},
			AnnotationVersion, "2.1.0", AnnotationRestart, "always", AnnotationStopTimeout, "1500ms", AnnotationTitle, "Sleeper"),
			"2.1.0", RestartAlways, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, dir := stage(t)
			m, err := Extract(context.Background(), bytes.NewReader(packtest.Tar(true, packtest.Bundle("app", tc.cfg, rootfs...)...)), r, "/stage", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if m.ID != "app" || m.Version != tc.version || m.Restart != tc.restart || m.StopTimeout.D() != tc.stopTimeout || m.Bundle == nil || m.Bundle.Dir != "app" || m.Exec != "" {
				t.Errorf("manifest %+v, want id app, version %s, restart %s, stop timeout %v, bundle dir app", m, tc.version, tc.restart, tc.stopTimeout)
			}
			if got := m.Bundle.Config.Process.Args; len(got) == 0 {
				t.Errorf("process args %q", got)
			}
			if got, err := os.Readlink(filepath.Join(dir, "stage/app/rootfs/bin/sh")); err != nil || got != "/bin/busybox" {
				t.Errorf("rootfs symlink = %q, %v; want /bin/busybox", got, err)
			}
			if st, err := os.Stat(filepath.Join(dir, "stage/app/rootfs/tmp")); err != nil || st.Mode()&(os.ModeSticky|0o022) != 0 {
				t.Errorf("rootfs /tmp mode %v, %v: want the mode mask applied (no sticky, no group or world write)", st.Mode(), err)
			}
			checkInside(t, dir)
			// The store reads installed trees again with Load.
			again, err := Load(r, "/stage")
			if err != nil || again.ID != m.ID || again.Version != m.Version || again.Bundle == nil {
				t.Errorf("Load = %+v, %v", again, err)
			}
		})
	}
}

func TestLoadPackage(t *testing.T) {
	r, _ := stage(t)
	if _, err := Extract(context.Background(), bytes.NewReader(packtest.Tar(false, hello()...)), r, "/stage", Limits{}); err != nil {
		t.Fatal(err)
	}
	m, err := Load(r, "/stage")
	if err != nil || m.ID != "hello" || m.Exec != "bin/hello" || m.Bundle != nil {
		t.Errorf("Load = %+v, %v", m, err)
	}
}

func FuzzParseBundleConfig(f *testing.F) {
	f.Add([]byte(packtest.BundleConfig([]string{"/bin/sleep", "1"}, AnnotationVersion, "1.0")))
	f.Add([]byte(`{"ociVersion": "1.0.2", "process": {"args": ["x"], "cwd": "/"}, "root": {"path": "../x"}}`))
	f.Add([]byte(`{"process": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseBundleConfig(data)
		if err != nil {
			if c := apperr.CodeOf(err); c != apperr.BadRequest && c != apperr.TooLarge {
				t.Fatalf("code %q for %v", c, err)
			}
			return
		}
		clean, err := CleanName(s.Root.Path)
		if err != nil || clean == "." || s.Process == nil || len(s.Process.Args) == 0 || s.Process.Terminal {
			t.Fatalf("accepted %+v", s)
		}
	})
}
