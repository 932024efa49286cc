package fernet

import (
	"testing"
	"time"
)

// benchMsg is the size of an identity payload for a project-scoped password
// token (71 bytes), which makes a 183-character token.
var benchMsg = make([]byte, 71)

func BenchmarkEncrypt(b *testing.B) {
	k, _ := GenerateKey()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encrypt(k, benchMsg, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt opens a token made with the primary key, the first key
// tried; BenchmarkDecryptLastKey one made with the last of three keys, as
// after two rotations, which costs two failed HMACs more.
func BenchmarkDecrypt(b *testing.B)        { benchDecrypt(b, 0) }
func BenchmarkDecryptLastKey(b *testing.B) { benchDecrypt(b, 2) }

func benchDecrypt(b *testing.B, which int) {
	keys := make([]Key, 3)
	for i := range keys {
		keys[i], _ = GenerateKey()
	}
	tok, err := Encrypt(keys[which], benchMsg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decrypt(keys, tok); err != nil {
			b.Fatal(err)
		}
	}
}
