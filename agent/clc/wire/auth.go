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
// The agent's challenge is 40 uniformly random bytes (NewChallenge); the
// controllers in the field RC4 whatever 40 bytes they get. The controller's
// own challenge is a random UUID string (36 characters) NUL-padded to 40
// (NewUUIDChallenge), which is what the field's controllers send.
//
// RC4 is weak, and used this way weaker still: the key is the same for
// every message and there is no nonce, so every Crypt call XORs with the
// same 40-byte keystream. One plaintext/ciphertext pair reveals the
// keystream, and with it the ability to answer any challenge. The old
// agents' UUID challenges leaked it too: a UUID's characters are few and
// its dashes and NULs fixed, so a fake controller that collected step-1
// ciphertexts (35 to 200 of them) could work the keystream out. Random
// bytes leave it nothing to work with. RC4 is kept only because every
// controller in the field speaks it (the standard library's crypto/rc4
// serves; x/crypto has none for new code). What the agent can do, it does:
// its challenge carries no structure, it answers the controller's
// challenge (step 3, which hands out a plaintext/ciphertext pair) only
// after the controller has passed step 2, it never logs a key or a
// plaintext, and KEY is a per-instance secret.

import (
	"crypto/rand"
	"crypto/rc4"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Challenge is the 40 bytes of a handshake challenge. It has no String
// method on purpose: challenges are secrets of the handshake and are never
// logged.
type Challenge [AuthDataLen]byte

// NewChallenge returns the agent's challenge: 40 bytes from crypto/rand,
// every one uniform. (Early in boot getrandom(2) waits until the kernel's
// pool is ready, a second or so in a fresh VM; that delays only the first
// handshake, which must not go out with guessable bytes.)
func NewChallenge() Challenge {
	var c Challenge
	rand.Read(c[:]) // never fails (crypto/rand panics rather than return short)
	return c
}

// NewUUIDChallenge returns a controller's challenge as the field's
// controllers make them: a fresh random (version 4) UUID in the
// lower-case form libuuid prints, NUL-padded to 40 bytes.
func NewUUIDChallenge() Challenge {
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
	c := NewUUIDChallenge()
	return string(c[:36])
}

// MinKeyLen is the shortest KEY the controllers in the field can use:
// their RC4 (libgcrypt) refuses keys under 40 bits.
const MinKeyLen = 5

// CheckKey reports whether key can serve as an RC4 key where the field's
// controllers use it: 5 to 256 bytes.
func CheckKey(key string) error {
	if len(key) < MinKeyLen || len(key) > 256 {
		return fmt.Errorf("KEY of %d bytes: the controllers' RC4 takes %d to 256", len(key), MinKeyLen)
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
