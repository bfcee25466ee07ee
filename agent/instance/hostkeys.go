package instance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/crypto/ssh"

	"osmanager/agent/sysroot"
)

// HostKeyTypes are the host key types made for a new instance, in
// sshd's order: the types ssh-keygen -A makes.
var HostKeyTypes = []string{"rsa", "ecdsa", "ed25519"}

// staleKeyTypes are host key types removed, not made again: a key an
// image carries of such a type would be shared by all its clones.
var staleKeyTypes = []string{"dsa"}

// DefaultRSABits is ssh-keygen's default RSA size.
const DefaultRSABits = 3072

// hostKeys makes new host keys when the image has the host key directory,
// removes stale types, and reports whether it made keys.
func (c *Config) hostKeys(r *Result) (bool, error) {
	dir := c.Paths.SSHHostKeys
	fi, err := c.Sys.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false, nil
	}
	if strings.ContainsAny(c.Comment, "\r\n\x00") {
		return false, fmt.Errorf("host key comment %q: control bytes", c.Comment)
	}
	bits := c.RSABits
	if bits == 0 {
		bits = DefaultRSABits
	}
	owner := sysroot.Owner{UID: c.Paths.RootUID, GID: c.Paths.RootGID}
	for _, t := range HostKeyTypes {
		priv, pub, err := newHostKey(t, bits, c.Comment)
		if err != nil {
			return false, err
		}
		name := fmt.Sprintf("%s/ssh_host_%s_key", dir, t)
		// The private key first: a crash between the two leaves a
		// public key that no longer matches, which sshd ignores (it
		// reads the private one), and no record, so the next boot
		// makes both again.
		for _, f := range []struct {
			name string
			data []byte
			mode fs.FileMode
		}{{name, priv, 0o600}, {name + ".pub", pub, 0o644}} {
			if _, err := c.Sys.WriteFile(f.name, f.data, sysroot.WriteOptions{Mode: f.mode, Owner: owner}); err != nil {
				return false, fmt.Errorf("host key: %w", err)
			}
			r.Changed = append(r.Changed, c.show(c.Sys, f.name))
		}
		c.log().Info("new SSH host key", "type", t, "file", c.show(c.Sys, name))
	}
	for _, t := range staleKeyTypes {
		name := fmt.Sprintf("%s/ssh_host_%s_key", dir, t)
		for _, n := range []string{name, name + ".pub"} {
			if err := c.remove(r, c.Sys, n); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// newHostKey makes a key of type t in OpenSSH's private key format and
// its authorized_keys-style public line.
func newHostKey(t string, rsaBits int, comment string) (priv, pub []byte, err error) {
	var k crypto.Signer
	switch t {
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, nil, fmt.Errorf("host key type %q", t)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s host key: %w", t, err)
	}
	block, err := ssh.MarshalPrivateKey(k, comment)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s host key: %w", t, err)
	}
	sp, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s public key: %w", t, err)
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(sp)), "\n")
	if comment != "" {
		line += " " + comment
	}
	return pem.EncodeToMemory(block), []byte(line + "\n"), nil
}
