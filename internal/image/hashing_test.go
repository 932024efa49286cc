package image

import (
	"crypto/sha256"
	"crypto/sha3"
	"encoding/hex"
	"testing"
)

// TestHashAlgorithm: with Glance's hashing_algorithm set, uploads and
// imports carry os_hash_algo and os_hash_value of that algorithm; data
// staged under one algorithm and imported after the setting changed is
// hashed with the new one, as Glance hashes at import; an unknown name
// stops the service from starting.
func TestHashAlgorithm(t *testing.T) {
	tc := newTestCloud(t, Config{HashAlgorithm: "sha256"})
	raw := map[string]any{"disk_format": "raw", "container_format": "bare"}
	data := []byte("the bytes of an image hashed with sha256")
	id := tc.upload(tc.demo, raw, data)
	im := tc.show(tc.demo, id)
	want := sha256.Sum256(data)
	if im["os_hash_algo"] != "sha256" || im["os_hash_value"] != hex.EncodeToString(want[:]) {
		t.Fatalf("upload with sha256: %v %v", im["os_hash_algo"], im["os_hash_value"])
	}
	if ids := tc.listIDs(tc.demo, "?os_hash_value="+hex.EncodeToString(want[:])); len(ids) != 1 || ids[0] != id {
		t.Errorf("list by os_hash_value: %v", ids)
	}

	staged := tc.create(tc.demo, raw)["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+staged+"/stage", tc.demo, data))
	if im := tc.show(tc.demo, staged); im["os_hash_algo"] != nil || im["os_hash_value"] != nil {
		t.Errorf("staged image shows a hash: %v %v", im["os_hash_algo"], im["os_hash_value"])
	}
	tc.cfg.HashAlgorithm = "sha3_512"
	tc.restart()
	tc.must(202, tc.do("POST", "/image/v2/images/"+staged+"/import", tc.demo,
		map[string]any{"method": map[string]any{"name": "glance-direct"}}))
	want3 := sha3.Sum512(data)
	if im := tc.show(tc.demo, staged); im["status"] != "active" || im["os_hash_algo"] != "sha3_512" ||
		im["os_hash_value"] != hex.EncodeToString(want3[:]) {
		t.Errorf("import, under sha3_512, of data staged under sha256: %v %v %v", im["status"], im["os_hash_algo"], im["os_hash_value"])
	}
	id3 := tc.upload(tc.demo, raw, data)
	if im := tc.show(tc.demo, id3); im["os_hash_algo"] != "sha3_512" || im["os_hash_value"] != hex.EncodeToString(want3[:]) {
		t.Errorf("upload with sha3_512: %v %v", im["os_hash_algo"], im["os_hash_value"])
	}

	for _, bad := range []string{"sha", "SHA256", "blake2b"} {
		if err := CheckHashAlgorithm(bad); err == nil {
			t.Errorf("CheckHashAlgorithm(%q): no error", bad)
		}
		if _, err := New(t.Context(), tc.db, Config{DataDir: t.TempDir(), HashAlgorithm: bad}, nil); err == nil {
			t.Errorf("New with hashing algorithm %q: no error", bad)
		}
	}
}
