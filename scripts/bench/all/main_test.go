package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRows(t *testing.T) {
	out := "osmanager boot, 7 runs\n  first boot   8.1ms\n" +
		"boot: first boot\t8.1ms\tGo hello 1.5ms\t5.40×\n" +
		"three\tfields\tonly\n" +
		"five\ta\tb\tc\td\n" +
		"# figure\tvalue\tfloor\tratio\n" +
		"\t\t\t\n" +
		" idle RSS \t 6.5 MiB \tbare Go net/http server 5.2 MiB\t1.25×\n"
	want := []row{
		{"boot: first boot", "8.1ms", "Go hello 1.5ms", "5.40×"},
		{"idle RSS", "6.5 MiB", "bare Go net/http server 5.2 MiB", "1.25×"},
	}
	if diff := cmp.Diff(want, parseRows([]byte(out)), cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestParseGoBench(t *testing.T) {
	out := "goos: linux\nBenchmarkSubstitutedPage-2   \t 1686255\t       702.3 ns/op\t     128 B/op\t       4 allocs/op\n" +
		"BenchmarkStartTerminate/group-2 \t 5\t 912345678 ns/op\t 3.6 start-ms\t 3.5 stop-ms\nPASS\n"
	g := goBench{figure: "go: x", comment: "c"}
	want := []row{
		{"go: x (BenchmarkSubstitutedPage)", "702.3 ns/op, 128 B/op, 4 allocs/op", "c", "—"},
		{"go: x (BenchmarkStartTerminate/group)", "912345678 ns/op, 3.6 start-ms, 3.5 stop-ms", "c", "—"},
	}
	if diff := cmp.Diff(want, parseGoBench([]byte(out), g), cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}
