// Package browser starts Debian's headless Chromium the one way this
// project's browser tests and benchmarks need it, and types into pages as
// a keyboard does. Chromium comes from Debian (apt-get install chromium);
// nothing is downloaded.
package browser

import (
	"context"
	"errors"
	"os"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Path is Debian's Chromium.
const Path = "/usr/bin/chromium"

// ErrMissing says Chromium is not installed.
var ErrMissing = errors.New("chromium not installed (apt-get install chromium)")

// Available reports whether Chromium is installed.
func Available() error {
	if _, err := os.Stat(Path); err != nil {
		return ErrMissing
	}
	return nil
}

// Options are the allocator options for headless Chromium with a fresh
// profile in userDataDir. The network flags matter on a closed machine:
// without them Chromium keeps trying to reach Google's hosts.
func Options(userDataDir string, width, height int) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // we run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(userDataDir),
		chromedp.WindowSize(width, height),
	}
}

// New starts Chromium and returns a browser context and its cancel func,
// which stops the browser.
func New(parent context.Context, userDataDir string, width, height int, opts ...chromedp.ContextOption) (context.Context, context.CancelFunc) {
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, Options(userDataDir, width, height)...)
	ctx, cancel := chromedp.NewContext(actx, opts...)
	return ctx, func() { cancel(); cancelAlloc() }
}

// TypeKeys types s as a keyboard does: a keyDown carrying the text, then a
// keyUp, so a page's preventDefault on keydown suppresses the keypress.
// (chromedp's KeyEvent sends the char as an event of its own, which
// xterm.js cannot suppress and then sees twice.)
func TypeKeys(s string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range s {
			var down, up *input.DispatchKeyEventParams
			text := ""
			for _, k := range kb.Encode(r) {
				switch k.Type {
				case kb.KeyDown:
					down = k
				case kb.KeyChar:
					text = k.Text
				case kb.KeyUp:
					up = k
				}
			}
			down.Text, down.UnmodifiedText = text, text
			for _, k := range []*input.DispatchKeyEventParams{down, up} {
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, *k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
