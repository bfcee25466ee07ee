package agent

import (
	"testing"

	"osmanager/agent/floppy"
	"osmanager/agent/paths"
	"osmanager/agent/webssh"
)

// Every file the terminal touches comes from the agent's one path table,
// so an image that moves /etc/passwd or the conf dir moves it there too;
// the terminal's own defaults are the table's.
func TestWebsshFilesFromPaths(t *testing.T) {
	p := paths.Default()
	p.Shadow, p.Passwd, p.Group, p.Locale = "/x/shadow", "/x/passwd", "/x/group", "/x/locale"
	p.WebSSHCert, p.WebSSHKey, p.KnownHosts, p.WebSSHShells = "/c/cert", "/c/key", "/c/known", "/c/shells"
	p.Proc, p.PATH, p.UserPATH = "/p", "/root/bin", "/user/bin"
	want := webssh.Files{Shadow: "/x/shadow", Passwd: "/x/passwd", Group: "/x/group", Locale: "/x/locale",
		Cert: "/c/cert", Key: "/c/key", KnownHosts: "/c/known", Shells: "/c/shells",
		Proc: "/p", PATH: "/root/bin", UserPATH: "/user/bin"}
	if got := websshFiles(p); got != want {
		t.Errorf("websshFiles = %+v, want %+v", got, want)
	}
	if got, want := websshFiles(paths.Default()), webssh.DefaultFiles(); got != want {
		t.Errorf("webssh.DefaultFiles = %+v, want the default table's %+v", want, got)
	}
	if floppy.DefaultPath != paths.DefaultFloppy {
		t.Errorf("floppy.DefaultPath %q, paths.DefaultFloppy %q", floppy.DefaultPath, paths.DefaultFloppy)
	}
}

func TestOSFilesFromPaths(t *testing.T) {
	p := paths.Default()
	p.RootHome, p.RootUID, p.RootGID, p.Hosts = "/home/r", 7, 8, "/x/hosts"
	f := osFiles(p)
	if f.SSHDir != "/home/r/.ssh" || f.AuthKeys != "/home/r/.ssh/authorized_keys" || f.RootUID != 7 || f.RootGID != 8 || f.Hosts != "/x/hosts" || f.Shadow != "/etc/shadow" {
		t.Errorf("osFiles = %+v", f)
	}
}
