package clcd

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"osmanager/agent/clc/wire"
)

func TestCommandFlags(t *testing.T) {
	ini := filepath.Join(t.TempDir(), "luoyun.ini")
	os.WriteFile(ini, []byte("TAG=5\nKEY="+key+"\nJSON={}\n"), 0o600)
	noTag := filepath.Join(t.TempDir(), "luoyun.ini")
	os.WriteFile(noTag, []byte("KEY="+key+"\nJSON={}\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no instances", nil, "no instances"},
		{"instance without key", []string{"-instance", "5"}, "want TAG:KEY"},
		{"negative tag", []string{"-instance", "-1:" + key}, "not a non-negative integer"},
		{"key with colon", []string{"-instance", "5:a:b"}, "without ':'"},
		{"ini without tag", []string{"-ini", noTag}, "no TAG or no KEY"},
		{"missing ini", []string{"-ini", "/nonexistent/luoyun.ini"}, "no such file"},
		{"bad group", []string{"-ini", ini, "-join-group", "nowhere"}, "not an IPv4 address"},
		{"bad advertise", []string{"-ini", ini, "-advertise", "::1"}, "want IPv4"},
		{"join on all addresses without advertise", []string{"-ini", ini, "-listen", ":0", "-join-group", "228.0.0.1"}, "give Advertise"},
		{"extra argument", []string{"-ini", ini, "extra"}, "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			c, cancel := context.WithCancel(context.Background())
			cancel() // a command that starts returns at once
			err := Command(c, tc.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tc.want) {
				t.Errorf("Command(%q) = %v (stderr %q), want an error saying %q", tc.args, err, errOut.String(), tc.want)
			}
		})
	}
}

// TestCommandRuns: the CLI serves an instance from -ini and -instance and
// logs JSON lines until its context ends.
func TestCommandRuns(t *testing.T) {
	ini := filepath.Join(t.TempDir(), "luoyun.ini")
	os.WriteFile(ini, []byte("TAG=5\nKEY="+key+"\nJSON={}\n"), 0o600)
	out := &syncBuffer{}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Command(c, []string{"-listen", "127.0.0.1:0", "-ini", ini, "-instance", "6:other-key", "-query-every", "20ms"}, out, &bytes.Buffer{})
	}()
	var addr netip.AddrPort
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !addr.IsValid() {
		for _, line := range strings.Split(out.String(), "\n") {
			var e struct{ Event, Detail string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Event == EventListening {
				addr, _ = netip.ParseAddrPort(e.Detail)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening event in %q", out.String())
		}
		<-tick.C
	}
	a := dial(t, addr)
	a.auth(5, key, false)
	a.register(5)
	// -query-every: a query comes; answer it.
	q := a.next()
	a.send(replyTo(q, 5))
	for !strings.Contains(out.String(), `"event":"query_reply"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no query_reply event in %q", out.String())
		}
		<-tick.C
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Command: %v", err)
	}
	out.events(t) // every line is a JSON event
}

func replyTo(m wire.Message, tag int32) wire.Message {
	q := m.(wire.QueryRequest)
	return wire.QueryReply{JobID: q.JobID, Tag: tag, Status: 101, IP: "127.0.0.1"}
}
