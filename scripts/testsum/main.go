// Command testsum reads `go test -json` on stdin and prints what a person
// needs from it: one line per package (ok, FAIL, or no tests), the output
// of every failed test or build, which tests were skipped and why, and the
// counts. scripts/test runs it.
//
//	go test -json ./... | go run ./scripts/testsum [-counts FILE]
//
// The last line is "N passed, N failed, N skipped"; -counts also writes
// "N N N" (passed, failed, skipped) to FILE, for a caller that adds its own
// checks. Every test and subtest counts once. A package that fails with no
// failed test of its own (a build error, a panic, a timeout) counts as one
// failure. The exit status is 1 when anything failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string // build-output and build-fail events
	FailedBuild string // a package's fail event when its build failed
}

// Summary is what a run of go test came to.
type Summary struct {
	Passed, Failed, Skipped int
	Skips                   []Skip // in the order they happened
}

// Skip is one skipped test and the reason it gave.
type Skip struct{ Package, Test, Reason string }

func main() {
	countsFile := flag.String("counts", "", `also write "passed failed skipped" to this file`)
	flag.Parse()
	s, err := Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	if *countsFile != "" {
		if err := os.WriteFile(*countsFile, fmt.Appendf(nil, "%d %d %d\n", s.Passed, s.Failed, s.Skipped), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "testsum:", err)
			os.Exit(2)
		}
	}
	if s.Failed > 0 {
		os.Exit(1)
	}
}

// key names a test within its package.
type key struct{ pkg, test string }

// Summarize reads go test -json from r and writes the report to w.
func Summarize(r io.Reader, w io.Writer) (Summary, error) {
	var s Summary
	output := map[key][]string{}    // each running test's output lines, and each package's ("")
	build := map[string][]string{}  // build output per import path
	failedTests := map[string]int{} // failed tests per package
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not test2json output (go vet or build errors on stderr merged in): show it.
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			build[e.ImportPath] = append(build[e.ImportPath], e.Output)
		case "output":
			output[k] = append(output[k], e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				packageResult(w, &s, e, output[k], build, failedTests[e.Package])
				delete(output, k)
				continue
			}
			switch e.Action {
			case "pass":
				s.Passed++
			case "fail":
				s.Failed++
				failedTests[e.Package]++
				fmt.Fprintf(w, "--- FAIL: %s %s\n%s", e.Package, e.Test, strings.Join(testLines(output[k]), ""))
			case "skip":
				s.Skipped++
				s.Skips = append(s.Skips, Skip{e.Package, e.Test, skipReason(output[k])})
			}
			delete(output, k)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read go test output: %w", err)
	}
	if len(s.Skips) > 0 {
		fmt.Fprintf(w, "skipped (%d):\n", len(s.Skips))
		sort.SliceStable(s.Skips, func(i, j int) bool { return s.Skips[i].Package < s.Skips[j].Package })
		for _, sk := range s.Skips {
			fmt.Fprintf(w, "  %s %s: %s\n", sk.Package, sk.Test, sk.Reason)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", s.Passed, s.Failed, s.Skipped)
	return s, nil
}

// packageResult prints a package's line and counts a failure of the package
// itself (build error, panic, timeout) when none of its tests failed.
func packageResult(w io.Writer, s *Summary, e event, out []string, build map[string][]string, failed int) {
	switch e.Action {
	case "pass":
		fmt.Fprintf(w, "ok   %s %.2fs\n", e.Package, e.Elapsed)
	case "skip":
		// No test files, or none ran: nothing to count.
	case "fail":
		fmt.Fprintf(w, "FAIL %s\n", e.Package)
		if e.FailedBuild != "" {
			fmt.Fprint(w, strings.Join(build[e.FailedBuild], ""))
		}
		if failed == 0 {
			s.Failed++
			fmt.Fprint(w, strings.Join(testLines(out), ""))
		}
	}
}

// framing matches the lines go test adds around a test's own output.
var framing = regexp.MustCompile(`^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (PASS|FAIL|SKIP):|PASS$|FAIL$|ok\s|FAIL\s)`)

// testLines drops go test's framing from a test's output.
func testLines(out []string) []string {
	var keep []string
	for _, l := range out {
		if !framing.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return keep
}

// skipReason is the last line the test wrote before skipping: the message
// of its t.Skip ("netns_test.go:31: needs root"), trimmed.
func skipReason(out []string) string {
	lines := testLines(out)
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "(no reason given)"
}
