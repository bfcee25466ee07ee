package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"osmanager/internal/browser"

	"github.com/chromedp/chromedp"
)

// renderInBrowser logs in through the page in headless Chromium, cats the
// file and waits until xterm.js has parsed every byte and shows the
// marker; it returns MB/s.
func renderInBrowser(base, file string, size int) (float64, error) {
	if err := browser.Available(); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "osm-bench-chromium-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ctx, stop := browser.New(context.Background(), dir, 1280, 800)
	defer stop()
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelT()
	err = chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`#login input[name=user]`),
		chromedp.SendKeys(`#login input[name=user]`, "root"),
		chromedp.SendKeys(`#login input[name=password]`, password),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#terminal .xterm`),
	)
	if err != nil {
		return 0, fmt.Errorf("log in: %w", err)
	}
	stats := func() (map[string]any, error) {
		return chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.osmStats ? window.osmStats() : {}`))
	}
	for i := 0; ; i++ {
		s, err := stats()
		if err != nil {
			return 0, err
		}
		if s["connected"] == true {
			break
		}
		if i > 200 {
			return 0, errors.New("the page did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, _ := stats()
	before, _ := s["processed"].(float64)
	frames0, _ := s["frames"].(float64)
	if *browserDebug {
		info, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelectorAll('.xterm canvas').length + " canvases; " + navigator.userAgent`))
		fmt.Println("browser:", info)
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`new Promise((resolve) => {
			const line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
			const chunk = new TextEncoder().encode(line.repeat(862));
			const n = 300; const t0 = performance.now(); let done = 0;
			for (let i = 0; i < n; i++) osmTerm.write(chunk, () => { if (++done === n) resolve(performance.now() - t0); });
		})`, chromedp.EvalAwaitPromise))
		fmt.Printf("browser: xterm.js alone parses 20 MB in %.0f ms (%v)\n", ms, err)
	}
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Focus(`.xterm-helper-textarea`), browser.TypeKeys("cat "+file+"; echo "+typedEnd+"\r")); err != nil {
		return 0, err
	}
	for {
		s, err := stats()
		if err != nil {
			return 0, err
		}
		if p, _ := s["processed"].(float64); p-before >= float64(size) {
			text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const b = osmTerm.buffer.active; let s = ""; for (let i = Math.max(0, b.length - 5); i < b.length; i++) s += b.getLine(i).translateToString(true) + "\n"; return s; })()`))
			if err != nil {
				return 0, err
			}
			if strings.Contains(text, marker) {
				break
			}
		}
		if time.Since(start) > 4*time.Minute {
			return 0, errors.New("rendering timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := time.Since(start)
	if s, err := stats(); err == nil {
		if f, _ := s["frames"].(float64); f > frames0 {
			fmt.Printf("browser: %.0f frames, %.1f kB each on average\n", f-frames0, float64(size)/(f-frames0)/1024)
		}
	}
	return float64(size) / 1e6 / d.Seconds(), nil
}
