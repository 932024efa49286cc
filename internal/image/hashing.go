package image

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
)

// DefaultHashAlgorithm is Glance's default hashing_algorithm.
const DefaultHashAlgorithm = "sha512"

// hashAlgorithms are the algorithms an image's os_hash_value may be
// computed with, by the names Python's hashlib gives them (Glance's
// hashing_algorithm is any hashlib name; these are the guaranteed ones
// that Go's standard library has).
var hashAlgorithms = map[string]func() hash.Hash{
	"md5":      md5.New,
	"sha1":     sha1.New,
	"sha224":   sha256.New224,
	"sha256":   sha256.New,
	"sha384":   sha512.New384,
	"sha512":   sha512.New,
	"sha3_224": func() hash.Hash { return sha3.New224() },
	"sha3_256": func() hash.Hash { return sha3.New256() },
	"sha3_384": func() hash.Hash { return sha3.New384() },
	"sha3_512": func() hash.Hash { return sha3.New512() },
}

// CheckHashAlgorithm says whether name is a hashing algorithm the service
// can use ("" is the default).
func CheckHashAlgorithm(name string) error {
	if name == "" {
		return nil
	}
	if _, ok := hashAlgorithms[name]; !ok {
		names := make([]string, 0, len(hashAlgorithms))
		for n := range hashAlgorithms {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("unknown image hashing algorithm %q (one of %s)", name, strings.Join(names, ", "))
	}
	return nil
}

// hashFile is the hex digest of a file's bytes with algorithm name.
func hashFile(path, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := hashAlgorithms[name]()
	if _, err := io.CopyBuffer(h, f, make([]byte, 1<<20)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
