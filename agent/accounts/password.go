package accounts

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/go-crypt/x/yescrypt"
)

// ErrHash is returned by CheckPassword for a hash it cannot check.
var ErrHash = errors.New("unsupported password hash")

// CheckPassword reports whether password matches a crypt(3) hash from
// /etc/shadow: SHA-512 ($6$), SHA-256 ($5$), MD5 ($1$) crypt or yescrypt
// ($y$). Locked ("!…", "*…") and empty hashes never match. Errors name the
// scheme, never the hash.
func CheckPassword(hash, password string) (bool, error) {
	switch {
	case hash == "" || hash[0] == '!' || hash[0] == '*':
		return false, nil
	case strings.HasPrefix(hash, "$y$"):
		got, err := yescrypt.Hash([]byte(password), []byte(hash))
		if err != nil {
			return false, fmt.Errorf("%w: malformed yescrypt hash", ErrHash)
		}
		return subtle.ConstantTimeCompare(got, []byte(hash)) == 1, nil
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		d, err := shacrypt.Decode(hash)
		if err != nil {
			return false, fmt.Errorf("%w: malformed sha-crypt hash", ErrHash)
		}
		return d.MatchBytes([]byte(password)), nil
	case strings.HasPrefix(hash, "$1$"):
		d, err := md5crypt.Decode(hash)
		if err != nil {
			return false, fmt.Errorf("%w: malformed md5-crypt hash", ErrHash)
		}
		return d.MatchBytes([]byte(password)), nil
	}
	return false, fmt.Errorf("%w: %s", ErrHash, scheme(hash))
}

// scheme names a hash's scheme ("$2b$") for an error, or "des/unknown":
// only a short identifier of the usual characters, never the hash's own
// bytes.
func scheme(hash string) string {
	if i := strings.IndexByte(hash[1:], '$'); hash[0] == '$' && i >= 1 && i <= 8 {
		id := hash[1 : i+1]
		if strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789") == "" {
			return "$" + id + "$"
		}
	}
	return "des/unknown"
}
