package accounts

import (
	"strings"
	"testing"
)

const testPassword = "s3cret pass"

var testHashes = map[string]string{
	"root":   "$6$saltsalt$osX/3U830g/zrFjlLO4TCL7anTNnqPEtGZkQlCTVqQ4pIrvUWJgcB5qXW3Wio7X4AzYGVHZaxr6U8FI7Xf77C/",
	"alice":  "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$9D5RovS/HuknGI0.ktF/JBj1lhaH1xkbCFp3CJ3OVL/",
	"sha256": "$5$saltsalt$PSOaQ1.uAjoqVUkrZPH7nqXa/TZbB4/.vAbfkDlIjN2",
	"md5":    "$1$saltsalt$5lF22gyv5RCQWSRkctJIT0",
	"rounds": "$6$rounds=5000$abc$7RLe4M0NwNWv0G3EcD6mMnJJnZnK6cG1bYv9WLKS6sUPfrii69ympYVtpJ5Bruvah5b9iN3nXQl3D2SCNK50O1",
}

func TestCheckPassword(t *testing.T) {
	for _, name := range []string{"root", "alice", "sha256", "md5", "rounds"} {
		t.Run(name, func(t *testing.T) {
			hash := testHashes[name]
			ok, err := CheckPassword(hash, testPassword)
			if err != nil || !ok {
				t.Errorf("right password: got %v, %v; want true", ok, err)
			}
			ok, err = CheckPassword(hash, testPassword+"x")
			if err != nil || ok {
				t.Errorf("wrong password: got %v, %v; want false", ok, err)
			}
		})
	}
	for _, hash := range []string{"", "!", "*", "!" + testHashes["root"], "!!"} {
		if ok, err := CheckPassword(hash, ""); ok || err != nil {
			t.Errorf("CheckPassword(%q, \"\") = %v, %v; want false, nil", hash, ok, err)
		}
	}
	for _, hash := range []string{"abJnggxhB/yWI", "$2b$05$abcdefghijklmnopqrstuu", "$y$garbage", "$6$"} {
		if ok, err := CheckPassword(hash, testPassword); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want an error", hash, ok, err)
		}
	}
}

// TestCheckPasswordErrorsHoldNoHash: a hash that cannot be checked is
// named by its scheme at most, never by its bytes.
func TestCheckPasswordErrorsHoldNoHash(t *testing.T) {
	for _, tc := range []struct{ name, hash, want string }{
		{"des", "abJnggxhB/yWI", "des/unknown"},
		{"bcrypt", "$2b$05$abcdefghijklmnopqrstuu", "$2b$"},
		{"bad yescrypt", "$y$garbageSECRET", "yescrypt"},
		{"bad sha512", "$6$rounds=SECRET$salt$x", "sha-crypt"},
		{"bad md5", "$1$SECRET", "md5-crypt"},
		{"long id", "$SECRETSECRETSECRET$x$y", "des/unknown"},
		{"odd id", "$SE:C$x$y", "des/unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckPassword(tc.hash, testPassword)
			if ok || err == nil {
				t.Fatalf("got %v, %v; want an error", ok, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "abJngg") || strings.Contains(err.Error(), "abcdefgh") {
				t.Errorf("error %q holds the hash's bytes", err)
			}
		})
	}
}
