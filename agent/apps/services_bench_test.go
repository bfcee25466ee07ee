package apps

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"osmanager/agent/api/apitypes"
)

// TestFigureLazyService: the first connection to a lazy declared service
// until the app (listenfd, a Go server) answers, median of 20, with three
// floors measured in the same run, interleaved, 20 each:
//
//   - direct: the same server started directly (listening itself),
//     connected to as soon as it listens (dial retried every 100 µs);
//
//   - shim: a socket bound and connected to first, then the server started
//     by hand through the sh shim with the socket (socket activation
//     without the agent);
//
//   - no shim: the same, the server started directly with the socket and
//     told to take it whatever LISTEN_PID says (the shim's own cost is
//     shim − no shim).
//
//     OSM_APPS_BENCH=1 go test -run TestFigureLazyService -v ./agent/apps/
func TestFigureLazyService(t *testing.T) {
	figures(t)
	bin, body := listenfdBinary(t)
	f := newFixture(t, nil, "")
	tcp := freePort(t)
	// The binary itself is the app (no wrapper script), as the floors run it.
	f.mustInstall(pkg("hello", "1.0.0", body, socketKey(tcp), `"start_limit": {"burst": 1000, "interval": "1s"}`), false)
	f.writeDecl("10-web.json", `{"services": {"web": ["hello", "-once"]}}`)
	f.reload()
	var lazy, direct, shim, noShim []time.Duration
	for i := range 20 {
		f.waitService("web", "listening", stateIs(apitypes.Listening))
		t0 := time.Now()
		if got := ask(t, "tcp", tcp); !strings.HasPrefix(got, "hello from") {
			t.Fatalf("lazy answer %q", got)
		}
		lazy = append(lazy, time.Since(t0))

		direct = append(direct, startDirect(t, bin))
		shim = append(shim, startActivated(t, bin, true))
		noShim = append(noShim, startActivated(t, bin, false))
		if i == 0 {
			t.Logf("first round: lazy %s, direct %s, shim %s, no shim %s", lazy[0], direct[0], shim[0], noShim[0])
		}
	}
	show := func(d []time.Duration) string {
		return fmt.Sprintf("median %s (min %s, max %s)", median(d).Round(10*time.Microsecond), slices.Min(d).Round(10*time.Microsecond), slices.Max(d).Round(10*time.Microsecond))
	}
	t.Logf("FIGURE lazy service, first connection → answer: %s of 20", show(lazy))
	t.Logf("FIGURE floor direct (server started, dial until it listens): %s", show(direct))
	t.Logf("FIGURE floor socket activation by hand through the sh shim: %s", show(shim))
	t.Logf("FIGURE the same without the shim: %s; shim cost ≈ %s", show(noShim), (median(shim) - median(noShim)).Round(10*time.Microsecond))
	t.Logf("FIGURE lazy / direct = %.2f; lazy − shim floor (the agent's part) = %s", float64(median(lazy))/float64(median(direct)), (median(lazy) - median(shim)).Round(10*time.Microsecond))
}

// startDirect starts the server listening itself and times its start to
// its answer.
func startDirect(t *testing.T, bin string) time.Duration {
	addr := freePort(t)
	t0 := time.Now()
	cmd := exec.Command(bin, "-listen", addr, "-once")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	deadline := t0.Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr != nil || !strings.HasPrefix(line, "hello from") {
				t.Fatalf("direct answer %q, %v", line, rerr)
			}
			return time.Since(t0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("direct server not up: %v", err)
		}
		time.Sleep(100 * time.Microsecond) // the floor's dial retry
	}
}

// startActivated binds a socket, connects (the connection waits in the
// backlog), starts the server with the socket, through the shim or not,
// and times the connect to the answer.
func startActivated(t *testing.T, bin string, viaShim bool) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	t0 := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := exec.Command(bin, "-once", "-anypid")
	if viaShim {
		cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, bin, "-once")
	}
	cmd.Env = []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=web", "PATH=" + os.Getenv("PATH")}
	cmd.ExtraFiles = []*os.File{lf}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "hello from") {
		t.Fatalf("activated answer %q, %v", line, err)
	}
	return time.Since(t0)
}
