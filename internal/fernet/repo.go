package fernet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Repo is a key repository directory (mode 0700). File 0 is the staged key
// (the next primary, already distributed so other hosts can decrypt with it),
// the highest number is the primary (encrypts), the rest are secondaries
// (decrypt tokens issued before a rotation).
type Repo struct {
	dir string
	max int

	mu      sync.RWMutex
	primary Key
	keys    []Key // primary first, then staged and secondaries
}

// OpenRepo loads the repository in dir, creating it with a staged and a
// primary key when it is empty. max is how many keys rotation keeps.
func OpenRepo(dir string, max int) (*Repo, error) {
	if max < 3 {
		return nil, errors.New("fernet: a repository keeps at least 3 keys")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	r := &Repo{dir: dir, max: max}
	nums, err := r.numbers()
	if err != nil {
		return nil, err
	}
	if len(nums) == 0 {
		for _, n := range []int{0, 1} {
			if err := r.writeNew(n); err != nil {
				return nil, err
			}
		}
	}
	return r, r.load()
}

func (r *Repo) numbers() ([]int, error) {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return nil, err
	}
	var nums []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= 0 {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}

// writeNew writes a fresh key as file n, atomically and durably.
func (r *Repo) writeNew(n int) error {
	k, err := GenerateKey()
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.dir, ".tmp-"+strconv.Itoa(n))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(k.Encode()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, strconv.Itoa(n))); err != nil {
		return err
	}
	return syncDir(r.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (r *Repo) load() error {
	nums, err := r.numbers()
	if err != nil {
		return err
	}
	if len(nums) < 2 || nums[0] != 0 {
		return fmt.Errorf("fernet: %s needs a staged key 0 and a primary key", r.dir)
	}
	var keys []Key
	// Highest (primary) first: most tokens were made with it.
	for i := len(nums) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(r.dir, strconv.Itoa(nums[i])))
		if err != nil {
			return err
		}
		k, err := DecodeKey(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("fernet: key %d: %w", nums[i], err)
		}
		keys = append(keys, k)
	}
	r.mu.Lock()
	r.primary, r.keys = keys[0], keys
	r.mu.Unlock()
	return nil
}

// Rotate promotes the staged key to primary, stages a new key and drops the
// oldest secondaries beyond the repository's size. Tokens made with the old
// primary stay valid: it is now a secondary.
func (r *Repo) Rotate() error {
	nums, err := r.numbers()
	if err != nil {
		return err
	}
	next := nums[len(nums)-1] + 1
	if err := os.Rename(filepath.Join(r.dir, "0"), filepath.Join(r.dir, strconv.Itoa(next))); err != nil {
		return err
	}
	if err := r.writeNew(0); err != nil {
		return err
	}
	nums, err = r.numbers()
	if err != nil {
		return err
	}
	for i := 1; len(nums)-(i-1) > r.max && i < len(nums)-1; i++ {
		if err := os.Remove(filepath.Join(r.dir, strconv.Itoa(nums[i]))); err != nil {
			return err
		}
		nums = slices.Delete(slices.Clone(nums), i, i+1)
		i--
	}
	if err := syncDir(r.dir); err != nil {
		return err
	}
	return r.load()
}

// Reload rereads the keys, for a rotation made by another process.
func (r *Repo) Reload() error { return r.load() }

// Primary is the key new tokens are encrypted with.
func (r *Repo) Primary() Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.primary
}

// Keys are all keys that decrypt, primary first.
func (r *Repo) Keys() []Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.keys
}
