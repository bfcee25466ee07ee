package web

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"osmanager/agent/state"
	"osmanager/internal/browser"
)

// TestDefaultPageInChromium loads the built-in page in headless Chromium:
// it renders under its own CSP, shows the instance's values, and a state
// change appears after the page's own refresh, without a reload.
func TestDefaultPageInChromium(t *testing.T) {
	if err := browser.Available(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	e := newEnv(t, func(c *envConfig) { c.Src.Refresh = 100 * time.Millisecond })
	fillState(e.state)
	fillStats(e.state)
	e.clock.Advance(90 * time.Second) // for the "since" columns
	// No appliance pages: the built-in one.
	if err := os.RemoveAll(e.www); err != nil {
		t.Fatal(err)
	}
	addr, _ := e.run()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	bctx, stop := browser.New(ctx, t.TempDir(), 1200, 900, chromedp.WithLogf(t.Logf))
	defer stop()

	// Anything the page complains about (a CSP refusal, a script error)
	// fails the test. A goroutine collects the console while the test runs.
	cctx, ccancel := context.WithCancel(bctx)
	messages := chromedp.Console(cctx)
	var logged []chromedp.ConsoleMessage
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for m, err := range messages {
			if err != nil {
				return
			}
			logged = append(logged, m)
		}
	}()
	// complaints ends the collection and fails the test for every error
	// or warning the page logged.
	complaints := func() {
		ccancel()
		<-collected
		for _, m := range logged {
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				t.Errorf("browser console: %s", m)
			}
		}
	}

	text := func(sel string) string {
		t.Helper()
		// The page re-renders a table when a poll brings a new document.
		// One evaluation finds the node and reads its text in the same task
		// of the page, so no re-render falls between the two (as it could
		// between chromedp.Text's query and its read: "No node with given
		// id", or the text of a node already replaced, ""). A node not on
		// the page yet is waited for, as chromedp.Text waits.
		js := fmt.Sprintf(`(function () { var e = document.querySelector(%q); return e === null ? null : e.innerText; })()`, sel)
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := chromedp.Run(bctx, chromedp.Evaluate[*string](js))
			if err != nil {
				t.Fatalf("text of %s: %v", sel, err)
			}
			if s != nil {
				return *s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s on the page after 10 s", sel)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("`+sel+`").length`))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}

	url := "http://" + addr + "/"
	lctx, lcancel := context.WithTimeout(bctx, 30*time.Second)
	defer lcancel()
	if err := chromedp.Do(lctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(`#link-state[data-state="registered"]`), // filled in by the first fetch
	); err != nil {
		complaints()
		t.Fatalf("load the page: %v", err)
	}
	term, err := chromedp.Run(bctx, chromedp.AttributeValue("#terminal-link", "href"))
	if err != nil {
		t.Fatalf("terminal link: %v", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"host name", text("#hostname"), "app1.example.com"},
		{"application", text("#application"), "wordpress"},
		{"version2", text("#version2"), "3.5.1"},
		{"application status", text("#app-status"), "running"},
		{"controller", text("#link-addr"), "10.0.0.1:1369"},
		{"boot", text("#boot-pill"), "boot: 1 of 4 failed"},
		{"addresses", text("#addresses"), "10.0.0.12/24 (eth0)\nfe80::5054:ff:fe12:3456/64 (eth0)"},
		{"terminal link", term.Value, "http://127.0.0.1:8001/"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if cpu := text("#cpu-text"); !strings.HasPrefix(cpu, "20.0% of 2 CPUs") {
		t.Errorf("CPU: %q", cpu)
	}
	if steps, services := count("#steps tr"), count("#services tr"); steps != 4 || services != 2 {
		t.Errorf("rows: %d steps, %d services; want 4 and 2", steps, services)
	}
	// The apps: one row per run, newest first; an app that never ran has one.
	cells := func(row int) []string {
		t.Helper()
		got, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](fmt.Sprintf(
			`Array.from(document.querySelectorAll("#apps tr")[%d].cells, function (c) { return c.textContent; })`, row)))
		if err != nil {
			t.Fatalf("apps row %d: %v", row, err)
		}
		return got
	}
	if n := count("#apps tr"); n != 4 {
		t.Errorf("apps rows: %d, want 4 (crashy, hello's two runs, idle)", n)
	}
	for _, c := range []struct {
		name string
		row  int
		want []string
	}{
		{"failed for good", 0, []string{"crashy", "0.2.0", "running", "failed", "4", "1m 30s ago", "4", "exit 2 · start limit hit: 5 starts in 10s"}},
		{"latest run first", 1, []string{"hello", "1.0.0", "running, at boot", "running", "3", "1m 30s ago", "1", "exit 1"}},
		{"older run", 2, []string{"hello", "1.0.0", "running, at boot", "exited", "1", "1m 30s ago", "2", "signal TERM"}},
		{"never started", 3, []string{"idle", "2.0", "stopped", "not started", "–", "–", "–", ""}},
	} {
		if diff := cmp.Diff(c.want, cells(c.row)); diff != "" {
			t.Errorf("apps, %s (-want +got):\n%s", c.name, diff)
		}
	}
	if got, want := text("#apps-note"), "3 installed · 1 of 2 to run are running · cgroups: hybrid"; got != want {
		t.Errorf("apps note: %q, want %q", got, want)
	}
	// The app monitor: a row per app, its gone run named; the raised
	// alerts; the interfaces.
	if n, a, nt := count("#stats tr"), count("#alerts li"), count("#net tr"); n != 2 || a != 2 || nt != 1 {
		t.Errorf("monitor: %d app rows, %d alerts, %d interfaces; want 2, 2, 1", n, a, nt)
	}
	if got := text("#stats tr:nth-child(2) td"); got != "web (run 8: cgroup gone)" {
		t.Errorf("gone run: %q", got)
	}
	if got := text("#stats tr:first-child td:nth-child(5)"); !strings.Contains(got, "50") {
		t.Errorf("hello's memory: %q", got)
	}
	if got := text("#stats-note"); got != "sampled every 1 s, averages over 10 s · 2 alerts raised" {
		t.Errorf("monitor note: %q", got)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.osmTestMarker = 42`)); err != nil {
		t.Fatal(err)
	}

	// The state changes; the page's next poll shows it.
	e.state.UpdateLink(func(l *state.Link) {
		l.Status, l.LastError, l.Reconnects = state.LinkDisconnected, "dial tcp 10.0.0.1:1369: connection refused", 4
	})
	e.state.SetAppHealth(state.AppHealth{Code: 2003, Meaning: "not serving (exit 3)", Checked: testStart})
	// Text from the state is text, never markup.
	const markup = `<img src=x id=injected onerror="window.osmInjected=1">`
	e.state.SetApps(state.Apps{Cgroups: "none", Apps: []state.AppView{{ID: "hello", Version: "1.0.1", Desired: "running",
		Runs: []state.RunView{{RunID: 9, State: "exited", Since: testStart, LastExit: "exit 3", Reason: markup}}}}})
	wctx, wcancel := context.WithTimeout(bctx, 30*time.Second)
	defer wcancel()
	if err := chromedp.Do(wctx,
		chromedp.WaitVisible(`#link-state[data-state="disconnected"]`),
	); err != nil {
		t.Fatalf("the page did not follow the link state: %v", err)
	}
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.getElementById("app-status").textContent === "not serving (exit 3)"`)); err != nil {
		t.Fatalf("the page did not follow the application status: %v", err)
	}
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](`document.querySelectorAll("#apps tr").length === 1`)); err != nil {
		t.Fatalf("the page did not follow the apps: %v", err)
	}
	if diff := cmp.Diff([]string{"hello", "1.0.1", "running", "exited", "9", "1m 30s ago", "0", "exit 3 · " + markup}, cells(0)); diff != "" {
		t.Errorf("apps after the change (-want +got):\n%s", diff)
	}
	if n := count("#injected"); n != 0 {
		t.Errorf("a reason's markup became %d element(s)", n)
	}
	if got := text("#link-error"); got != "dial tcp 10.0.0.1:1369: connection refused" {
		t.Errorf("link error: %q", got)
	}
	if got := text("#link-reconnects"); got != "4" {
		t.Errorf("reconnects: %q", got)
	}
	if marker, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.osmTestMarker || 0`)); err != nil || marker != 42 {
		t.Errorf("marker %d, %v: the page reloaded; it should update in place", marker, err)
	}
	complaints()
}
