// Package fernet implements Fernet tokens (AES-128-CBC then HMAC-SHA256, per
// the Fernet specification) and a Keystone-style key repository: numbered
// key files in one directory, 0 the staged key, the highest the primary,
// the rest secondaries that still decrypt. Tokens are base64url without
// padding, as Keystone emits them.
package fernet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Key is a Fernet key: 16 bytes of HMAC key then 16 bytes of AES key.
type Key [32]byte

// ErrInvalid: the token is malformed or no key authenticates it.
var ErrInvalid = errors.New("fernet: invalid token")

const version = 0x80

var b64 = base64.RawURLEncoding

// GenerateKey returns a random key.
func GenerateKey() (Key, error) {
	var k Key
	_, err := rand.Read(k[:])
	return k, err
}

// Encode returns the key as Fernet's base64url text.
func (k Key) Encode() string { return base64.URLEncoding.EncodeToString(k[:]) }

// DecodeKey parses a key's base64url text.
func DecodeKey(s string) (Key, error) {
	var k Key
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, errors.New("fernet: a key is 32 bytes of base64url")
	}
	copy(k[:], b)
	return k, nil
}

// Encrypt seals msg with k, stamped with now.
func Encrypt(k Key, msg []byte, now time.Time) (string, error) {
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(iv); err != nil {
		return "", err
	}
	pad := aes.BlockSize - len(msg)%aes.BlockSize
	n := 1 + 8 + aes.BlockSize + len(msg) + pad
	out := make([]byte, n, n+sha256.Size)
	out[0] = version
	binary.BigEndian.PutUint64(out[1:9], uint64(now.Unix()))
	copy(out[9:25], iv)
	body := out[25:]
	copy(body, msg)
	for i := len(msg); i < len(body); i++ {
		body[i] = byte(pad)
	}
	block, err := aes.NewCipher(k[16:])
	if err != nil {
		return "", err
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
	mac := hmac.New(sha256.New, k[:16])
	mac.Write(out)
	out = mac.Sum(out)
	return b64.EncodeToString(out), nil
}

// Decrypt opens tok with the first of keys that authenticates it and returns
// the message and the token's timestamp. Expiry is the caller's business.
func Decrypt(keys []Key, tok string) ([]byte, time.Time, error) {
	for len(tok) > 0 && tok[len(tok)-1] == '=' {
		tok = tok[:len(tok)-1]
	}
	raw, err := b64.DecodeString(tok)
	if err != nil || len(raw) < 1+8+aes.BlockSize+aes.BlockSize+sha256.Size || raw[0] != version {
		return nil, time.Time{}, ErrInvalid
	}
	signed, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if (len(signed)-25)%aes.BlockSize != 0 {
		return nil, time.Time{}, ErrInvalid
	}
	for i := range keys {
		k := &keys[i]
		mac := hmac.New(sha256.New, k[:16])
		mac.Write(signed)
		if subtle.ConstantTimeCompare(mac.Sum(nil), sum) != 1 {
			continue
		}
		block, err := aes.NewCipher(k[16:])
		if err != nil {
			return nil, time.Time{}, err
		}
		body := make([]byte, len(signed)-25)
		cipher.NewCBCDecrypter(block, signed[9:25]).CryptBlocks(body, signed[25:])
		pad := int(body[len(body)-1])
		if pad == 0 || pad > aes.BlockSize || pad > len(body) {
			return nil, time.Time{}, ErrInvalid
		}
		for _, b := range body[len(body)-pad:] {
			if int(b) != pad {
				return nil, time.Time{}, ErrInvalid
			}
		}
		ts := time.Unix(int64(binary.BigEndian.Uint64(signed[1:9])), 0)
		return body[:len(body)-pad], ts, nil
	}
	return nil, time.Time{}, ErrInvalid
}
