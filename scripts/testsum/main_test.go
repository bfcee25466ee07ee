package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/mixed.json is recorded `go test -json ./...` of four packages:
// one passing with skips (a test, a subtest), one with a failed test, one
// that does not build, one whose TestMain panics.
func TestSummarize(t *testing.T) {
	in, err := os.ReadFile("testdata/mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := Summarize(bytes.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Passed: 4, Failed: 3, Skipped: 2, Skips: []Skip{
		{"rec/ok", "TestSkip", "ok_test.go:6: needs root for a network namespace"},
		{"rec/ok", "TestTable/b", "ok_test.go:9: needs qemu"},
	}}
	if d := cmp.Diff(want, s); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if got, want := lines[len(lines)-1], "4 passed, 3 failed, 2 skipped"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	for _, want := range []string{
		"--- FAIL: rec/bad TestFail\n    bad_test.go:5: got 1, want 2\n",
		"FAIL rec/broken\n",
		"undefined: undefined",
		"FAIL rec/panics\npanic: boom in TestMain",
		"ok   rec/ok ",
		"skipped (2):\n  rec/ok TestSkip: ok_test.go:6: needs root",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "=== RUN") {
		t.Errorf("report shows go test's framing:\n%s", out.String())
	}
}

func TestSummarizeEdges(t *testing.T) {
	cases := []struct {
		name, in, wantLast string
	}{
		{"empty", "", "0 passed, 0 failed, 0 skipped"},
		{"not json", "go: downloading x\n", "0 passed, 0 failed, 0 skipped"},
		{"skip without reason", `{"Action":"skip","Package":"p","Test":"T"}` + "\n", "0 passed, 0 failed, 1 skipped"},
		{"package without tests", `{"Action":"skip","Package":"p"}` + "\n", "0 passed, 0 failed, 0 skipped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			if _, err := Summarize(strings.NewReader(c.in), &out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if got := lines[len(lines)-1]; got != c.wantLast {
				t.Errorf("last line = %q, want %q", got, c.wantLast)
			}
		})
	}
}

// FuzzSummarize: any input gives a report ending in the counts, never a panic.
func FuzzSummarize(f *testing.F) {
	if in, err := os.ReadFile("testdata/mixed.json"); err == nil {
		f.Add(in)
	}
	f.Add([]byte(`{"Action":"fail","Package":"p","FailedBuild":"p"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		s, err := Summarize(bytes.NewReader(in), &out)
		if err != nil {
			return // a line over the scanner's limit
		}
		if s.Passed < 0 || s.Failed < 0 || s.Skipped != len(s.Skips) {
			t.Errorf("summary %+v", s)
		}
		if !strings.HasSuffix(out.String(), " skipped\n") {
			t.Errorf("report does not end with the counts: %q", out.String())
		}
	})
}
