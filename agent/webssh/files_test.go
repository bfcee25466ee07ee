package webssh

import (
	"testing"

	"osmanager/agent/paths"
)

// Every file the terminal touches comes from the agent's one path table,
// so an image that moves /etc/passwd or the conf dir moves it here too.
func TestFilesFromPaths(t *testing.T) {
	p := paths.Default()
	p.Shadow, p.Passwd, p.Group, p.Locale = "/x/shadow", "/x/passwd", "/x/group", "/x/locale"
	p.WebSSHCert, p.WebSSHKey, p.KnownHosts, p.WebSSHShells = "/c/cert", "/c/key", "/c/known", "/c/shells"
	want := Files{Shadow: "/x/shadow", Passwd: "/x/passwd", Group: "/x/group", Locale: "/x/locale",
		Cert: "/c/cert", Key: "/c/key", KnownHosts: "/c/known", Shells: "/c/shells"}
	if got := FilesFrom(p); got != want {
		t.Errorf("FilesFrom = %+v, want %+v", got, want)
	}
	if DefaultFiles() != FilesFrom(paths.Default()) {
		t.Error("DefaultFiles differs from the default path table")
	}
}
