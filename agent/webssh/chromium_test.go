package webssh

import (
	"context"
	"strings"
	"testing"
	"time"

	"osmanager/internal/browser"

	"github.com/chromedp/chromedp"
)

// newBrowser starts headless Chromium with a fresh profile; it skips the
// test when the browser is missing.
func newBrowser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	if err := browser.Available(); err != nil {
		t.Skip(err)
	}
	ctx, stop := browser.New(context.Background(), t.TempDir(), 1200, 800)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		stop()
	})
	return ctx
}

// bufferJS returns the xterm.js buffer's lines, trailing blanks trimmed.
const bufferJS = `(() => {
	const b = window.osmTerm.buffer.active, out = [];
	for (let i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));
	return out.join("\n");
})()`

// browserLogin opens the page and logs in through the form.
func browserLogin(ctx context.Context, url, user, password string) error {
	return chromedp.Do(ctx,
		chromedp.Navigate(url+"/"),
		chromedp.WaitVisible(`#login input[name=user]`),
		chromedp.SendKeys(`#login input[name=user]`, user),
		chromedp.SendKeys(`#login input[name=password]`, password),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#terminal .xterm`),
		func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`window.osmStats && window.osmStats().connected`, chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
			return chromedp.Void{}, err
		},
	)
}

func TestChromium(t *testing.T) {
	ctx := newBrowser(t, 90*time.Second)
	e := newEnv(t)
	if err := browserLogin(ctx, e.url, "root", testPassword); err != nil {
		t.Fatalf("log in through the page: %v", err)
	}
	// Wait for the shell's prompt, then type.
	waitFor(t, "the prompt", 30*time.Second, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS))
		if err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.HasPrefix(text, "# ") || strings.HasPrefix(text, "$ ")
	})
	if err := chromedp.Do(ctx, chromedp.Focus(`.xterm-helper-textarea`), browser.TypeKeys("echo hello\r")); err != nil {
		t.Fatalf("type: %v", err)
	}
	var text string
	defer func() {
		if t.Failed() {
			t.Logf("xterm.js buffer: %q", text)
		}
	}()
	waitFor(t, "the command and hello in the xterm.js buffer", 30*time.Second, func() bool {
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS)); err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.Contains(text, "echo hello\n") && strings.Contains(text, "\nhello\n")
	})
	// Drop the websocket under the page: it reconnects and resumes the
	// same shell, with output produced while it was away.
	e.srv.mu.Lock()
	for _, tm := range e.srv.terms {
		tm.mu.Lock()
		if tm.att != nil {
			tm.att.conn.UnderlyingConn().Close()
		}
		tm.mu.Unlock()
	}
	e.srv.mu.Unlock()
	if err := chromedp.Do(ctx, browser.TypeKeys("echo after''wards\r")); err != nil {
		t.Fatalf("type: %v", err)
	}
	waitFor(t, "afterwards in the buffer after the reconnect", 30*time.Second, func() bool {
		var err error
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS)); err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.Contains(text, "\nafterwards\n")
	})
	if got := e.st.Terminal().Sessions; got != 1 {
		t.Errorf("%d sessions started, want 1 (the page should resume)", got)
	}
	// Logging out ends the session.
	if err := chromedp.Do(ctx, chromedp.Click(`#logout button`), chromedp.WaitVisible(`#login input[name=user]`)); err != nil {
		t.Fatalf("log out: %v", err)
	}
	waitFor(t, "the session to end", 10*time.Second, func() bool { return len(e.srv.Sessions()) == 0 })
}

// TestChromiumAcks: the page coalesces acks (small outputs in quick
// succession, as echoes of fast typing, share one), yet acknowledges
// everything soon after output stops, so the server keeps nothing; a bulk
// of output flows without waiting on the ack timer.
func TestChromiumAcks(t *testing.T) {
	ctx := newBrowser(t, 90*time.Second)
	e := newEnv(t)
	if err := browserLogin(ctx, e.url, "root", testPassword); err != nil {
		t.Fatalf("log in through the page: %v", err)
	}
	type stats struct {
		RX, Processed, Acked, Acks, Frames float64
	}
	read := func() stats {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.osmStats()`))
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		f := func(k string) float64 { v, _ := s[k].(float64); return v }
		return stats{f("rx"), f("processed"), f("acked"), f("acks"), f("frames")}
	}
	settled := func(what string) stats {
		var s stats
		waitFor(t, what, 30*time.Second, func() bool {
			s = read()
			ss := e.srv.Sessions()
			return s.Processed == s.RX && s.Acked == s.Processed && len(ss) == 1 && ss[0].Unacked == 0
		})
		return s
	}
	waitFor(t, "the prompt", 30*time.Second, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS))
		if err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.HasPrefix(text, "# ") || strings.HasPrefix(text, "$ ")
	})
	before := settled("the prompt acknowledged")
	// Small outputs a few ms apart: one frame each, within the ack delay.
	if err := chromedp.Do(ctx, chromedp.Focus(`.xterm-helper-textarea`),
		browser.TypeKeys("for i in $(seq 40); do echo x$i; sleep 0.005; done; echo EN''D\r")); err != nil {
		t.Fatalf("type: %v", err)
	}
	waitFor(t, "the loop's output", 30*time.Second, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS))
		if err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.Contains(text, "\nEND\n")
	})
	after := settled("the loop's output acknowledged")
	frames, acks := after.Frames-before.Frames, after.Acks-before.Acks
	t.Logf("%.0f output frames, %.0f acks", frames, acks)
	if frames < 10 || acks < 1 || acks >= frames {
		t.Errorf("%.0f acks for %.0f output frames, want at least one and fewer than the frames (at least 10)", acks, frames)
	}
	// A bulk: over the server's frame, acked as it comes.
	if err := chromedp.Do(ctx, browser.TypeKeys("seq 1 40000; echo DO''NE\r")); err != nil {
		t.Fatalf("type: %v", err)
	}
	waitFor(t, "the bulk output's end", 60*time.Second, func() bool {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](bufferJS))
		if err != nil {
			t.Fatalf("read the buffer: %v", err)
		}
		return strings.Contains(text, "\nDONE\n")
	})
	settled("the bulk acknowledged")
}
