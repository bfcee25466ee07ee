package wire

// Mutual authentication, as the controllers in the field do it:
//
//  1. The agent sends AUTH_REQUEST(tag, Crypt(KEY, its challenge)).
//  2. The controller answers AUTH_REPLY(tag, Crypt(KEY, that)), which is the
//     agent's plain challenge if and only if the controller knows KEY.
//  3. The controller sends AUTH_REQUEST(tag, its own plain challenge); the
//     agent answers AUTH_REPLY(tag, Crypt(KEY, it)) and the controller
//     checks by decrypting.
//
// A challenge is a random UUID string (36 characters) NUL-padded to 40.
//
// RC4 is weak, and used this way weaker still: the key is the same for
// every message and there is no nonce, so every Crypt call XORs with the
// same 40-byte keystream. One plaintext/ciphertext pair reveals the
// keystream, and with it the ability to answer any challenge; a handful of
// observed step-1 ciphertexts narrows it down too, since a UUID's
// characters are few. RC4 is kept only because every controller in the
// field speaks it (the standard library's crypto/rc4 serves; x/crypto has
// none for new code). What the agent can do, it does: it answers the
// controller's challenge (step 3, which hands out a plaintext/ciphertext
// pair) only after the controller has passed step 2, it never logs a key or
// a plaintext, and KEY is a per-instance secret.

import (
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Challenge is a UUID string NUL-padded to AuthDataLen bytes. It has no
// String method on purpose: challenges are secrets of the handshake and are
// never logged.
type Challenge [AuthDataLen]byte

// NewChallenge returns a fresh random (version 4) UUID challenge, in the
// lower-case form libuuid prints.
func NewChallenge() Challenge {
	var u [16]byte
	rand.Read(u[:]) // never fails (crypto/rand panics rather than return short)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var c Challenge
	hex.Encode(c[0:8], u[0:4])
	c[8] = '-'
	hex.Encode(c[9:13], u[4:6])
	c[13] = '-'
	hex.Encode(c[14:18], u[6:8])
	c[18] = '-'
	hex.Encode(c[19:23], u[8:10])
	c[23] = '-'
	hex.Encode(c[24:36], u[10:16])
	return c
}

// NewKey returns a fresh instance KEY as the cloud makes them: a random
// UUID string (what a challenge holds before its NUL padding).
func NewKey() string {
	c := NewChallenge()
	return string(c[:36])
}

// CheckKey reports whether key can serve as an RC4 key: 1 to 256 bytes.
func CheckKey(key string) error {
	if len(key) < 1 || len(key) > 256 {
		return fmt.Errorf("KEY of %d bytes: RC4 takes 1 to 256", len(key))
	}
	return nil
}

// Crypt encrypts or decrypts (RC4 is its own inverse) the 40 bytes with a
// fresh RC4 stream keyed by KEY's bytes, no terminator: each operation
// starts the stream anew, as the controller does.
func Crypt(key string, in [AuthDataLen]byte) ([AuthDataLen]byte, error) {
	var out [AuthDataLen]byte
	c, err := rc4.NewCipher([]byte(key))
	if err != nil {
		return out, fmt.Errorf("rc4: %w", err)
	}
	c.XORKeyStream(out[:], in[:])
	return out, nil
}

// Equal reports whether the controller's answer is exactly the challenge,
// all 40 bytes, in constant time.
func (c *Challenge) Equal(answer [AuthDataLen]byte) bool {
	return subtle.ConstantTimeCompare(c[:], answer[:]) == 1
}

// MatchesFold is the controller's check of an agent's decrypted answer:
// strcasecmp of the two as C strings (up to the first NUL, or all 40
// bytes), ASCII letters compared without case.
func (c *Challenge) MatchesFold(answer [AuthDataLen]byte) bool {
	for i := range AuthDataLen {
		a, b := lower(c[i]), lower(answer[i])
		if a != b {
			return false
		}
		if a == 0 {
			return true
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}
