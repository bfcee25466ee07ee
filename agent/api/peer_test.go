package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"osmanager/agent/api/apitest"
	"osmanager/agent/api/client"
	"osmanager/agent/apps/apperr"
	"osmanager/agent/sysroot"
)

const helperEnv = "OSM_API_TEST_CALL"

// TestPeerHelper is the other caller of TestPeer: run as another uid,
// it lists the apps and prints what came of it.
func TestPeerHelper(t *testing.T) {
	sock := os.Getenv(helperEnv)
	if sock == "" {
		t.Skip("the helper process of TestPeer")
	}
	_, err := client.New(sock).List(context.Background())
	fmt.Printf("RESULT code=%q err=%v\n", apperr.CodeOf(err), err)
}

// callAs runs TestPeerHelper with cred against sock and returns its
// RESULT line.
func callAs(t *testing.T, bin, sock string, cred *syscall.Credential) string {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^TestPeerHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+sock)
	cmd.Dir = filepath.Dir(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if r, ok := strings.CutPrefix(line, "RESULT "); ok {
			return r
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
	return ""
}

// copyTestBinary puts the test binary where uid 65534 may run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(testDir(t), "api.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the other caller runs as uid 65534")
	}
	bin := copyTestBinary(t)
	sysDir := testDir(t)
	if err := os.MkdirAll(sysDir+"/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sysDir+"/etc/group", []byte("root:x:0:\nosmapi:x:4242:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sys, err := sysroot.New(sysDir)
	if err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{4242}}
	primary := &syscall.Credential{Uid: 65534, Gid: 4242, Groups: []uint32{}}
	for _, tc := range []struct {
		name     string
		group    string
		loose    bool // the socket chmodded 0666: SO_PEERCRED is then the only gate
		cred     *syscall.Credential
		wantCode apperr.Code
		wantLog  bool
	}{
		{"root only, by the mode", "", false, nobody, apperr.Forbidden, false},
		{"root only, by peer creds", "", true, nobody, apperr.Forbidden, true},
		{"group member", "osmapi", false, member, "", false},
		{"group primary", "osmapi", false, primary, "", false},
		{"not in the group, by the mode", "osmapi", false, nobody, apperr.Forbidden, false},
		{"not in the group, by peer creds", "osmapi", true, nobody, apperr.Forbidden, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Group: tc.group}
			if tc.group != "" {
				cfg.Sys, cfg.GroupFile = sys, "/etc/group"
			}
			sock, logs := serve(t, cfg)
			var st syscall.Stat_t
			if err := syscall.Stat(sock, &st); err != nil {
				t.Fatal(err)
			}
			wantGID := uint32(0)
			if tc.group != "" {
				wantGID = 4242
			}
			if st.Uid != 0 || st.Gid != wantGID || st.Mode&0o777 != 0o660 {
				t.Errorf("socket %d:%d %o, want 0:%d 660", st.Uid, st.Gid, st.Mode&0o777, wantGID)
			}
			if tc.loose {
				if err := os.Chmod(sock, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			got := callAs(t, bin, sock, tc.cred)
			if want := fmt.Sprintf("code=%q", tc.wantCode); !strings.HasPrefix(got, want) {
				t.Errorf("result %s, want %s", got, want)
			}
			if tc.wantCode == apperr.Forbidden && !strings.Contains(got, client.DeniedMessage) {
				t.Errorf("result %s, want the message %q", got, client.DeniedMessage)
			}
			logged := strings.Contains(logs.String(), "api caller refused") && strings.Contains(logs.String(), "uid=65534")
			if logged != tc.wantLog {
				t.Errorf("refusal logged = %v, want %v", logged, tc.wantLog)
			}
		})
	}
}

func TestUnknownGroup(t *testing.T) {
	dir := testDir(t)
	os.MkdirAll(dir+"/etc", 0o755)
	os.WriteFile(dir+"/etc/group", []byte("root:x:0:\n"), 0o644)
	sys, err := sysroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Socket: dir + "/s", Apps: &apitest.Fake{}, Group: "osmapi", Sys: sys, GroupFile: "/etc/group"})
	if err == nil || !strings.Contains(err.Error(), `group "osmapi" not found`) {
		t.Errorf("New = %v, want group not found", err)
	}
}

// TestAllowed: root, the agent's own user and members of the API group
// may call; any other uid may not, and neither may a peer whose
// credentials could not be read.
func TestAllowed(t *testing.T) {
	own := uint32(os.Getuid())
	other := own + 4242
	s := &Server{gid: 777}
	for _, tc := range []struct {
		name string
		p    Peer
		want bool
	}{
		{"root", Peer{UID: 0, GID: 1}, true},
		{"the agent's own user", Peer{UID: own, GID: 1}, true},
		{"another user", Peer{UID: other, GID: 1}, own == 0 && other == 0},
		{"another user, API group primary", Peer{UID: other, GID: 777}, true},
		{"another user, API group supplementary", Peer{UID: other, GID: 1, Groups: []uint32{5, 777}}, true},
		{"unreadable credentials", Peer{UID: 0, Err: errors.New("no creds")}, false},
	} {
		if got := s.allowed(tc.p); got != tc.want {
			t.Errorf("%s: allowed(%+v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
	s.gid = -1
	if s.allowed(Peer{UID: other, GID: 777}) {
		t.Error("no API group: a non-root caller of another uid was allowed")
	}
}
