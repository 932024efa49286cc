package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"testing"
)

type tarFile struct {
	name string
	body []byte
	dir  bool
}

func makeTar(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}
		if f.dir {
			h = &tar.Header{Name: f.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func rootfs(t *testing.T) []byte {
	return makeTar(t, tarFile{name: "./bin/", dir: true}, tarFile{name: "./bin/sh", body: []byte("#!binary")},
		tarFile{name: "./etc/", dir: true}, tarFile{name: "./etc/hostname", body: []byte("box\n")},
		tarFile{name: "./usr/share/doc/deep/file", body: []byte("x")})
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func dockerArchive(t *testing.T, drop string) []byte {
	layer := makeTar(t, tarFile{name: "bin/sh", body: []byte("sh")})
	files := []tarFile{
		{name: "abc123.json", body: []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}`)},
		{name: "deadbeef/", dir: true},
		{name: "deadbeef/layer.tar", body: layer},
		{name: "repositories", body: []byte(`{"busybox":{"latest":"deadbeef"}}`)},
		{name: "manifest.json", body: mustJSON([]map[string]any{{"Config": "abc123.json", "RepoTags": []string{"busybox:latest"},
			"Layers": []string{"deadbeef/layer.tar"}}})},
	}
	var keep []tarFile
	for _, f := range files {
		if f.name != drop {
			keep = append(keep, f)
		}
	}
	return makeTar(t, keep...)
}

func digest(b []byte) (string, string) {
	s := sha256.Sum256(b)
	h := hex.EncodeToString(s[:])
	return "sha256:" + h, "blobs/sha256/" + h
}

func ociLayout(t *testing.T, nested bool, dropLayer bool) []byte {
	layer := gz(makeTar(t, tarFile{name: "bin/sh", body: []byte("sh")}))
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	ld, lp := digest(layer)
	cd, cp := digest(config)
	manifest := mustJSON(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}}})
	md, mp := digest(manifest)
	files := []tarFile{
		{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: cp, body: config},
		{name: mp, body: manifest},
	}
	if !dropLayer {
		files = append(files, tarFile{name: lp, body: layer})
	}
	top := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(manifest),
		"annotations": map[string]string{"org.opencontainers.image.ref.name": "latest"}}
	if nested {
		idx := mustJSON(map[string]any{"schemaVersion": 2, "manifests": []any{
			map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:0000", "platform": map[string]any{"os": "linux", "architecture": "arm64"}},
			map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "platform": map[string]any{"os": "linux", "architecture": "amd64"}},
		}})
		id, ip := digest(idx)
		files = append(files, tarFile{name: ip, body: idx})
		top = map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": len(idx),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "latest"}}
	}
	files = append(files, tarFile{name: "index.json", body: mustJSON(map[string]any{"schemaVersion": 2, "manifests": []any{top}})})
	return makeTar(t, files...)
}

func TestContainerFormats(t *testing.T) {
	tc := newTestCloud(t, Config{})
	root := rootfs(t)
	corrupt := root[:len(root)-1024] // a header promising more than there is
	corrupt = append(corrupt[:600:600], bytes.Repeat([]byte{0xff}, 900)...)
	oci := ociLayout(t, false, false)
	_, ociLayer := digest(gz(makeTar(t, tarFile{name: "bin/sh", body: []byte("sh")})))
	cases := []struct {
		name            string
		container, disk string
		data            []byte
		status          int
		want            Format
	}{
		{"rootfs tar", "bare", "raw", root, 204, Format{Kind: KindRootfsTar, Entries: 5, VirtualSize: int64(len(root))}},
		{"gzipped rootfs tar", "bare", "raw", gz(root), 204, Format{Kind: KindRootfsTar, Compression: "gzip", Entries: 5}},
		{"raw disk under bare", "bare", "raw", bytes.Repeat([]byte{0}, 4096), 204, Format{Kind: KindRaw, Note: "not a tar archive", VirtualSize: 4096}},
		{"qcow2 under bare", "bare", "qcow2", append([]byte("QFI\xfb\x00\x00\x00\x03"+string(make([]byte, 16))+"\x00\x00\x00\x00\x40\x00\x00\x00"), make([]byte, 600)...), 204,
			Format{Kind: KindRaw, Note: "not a tar archive", VirtualSize: 1 << 30}},
		{"corrupt tar under bare", "bare", "raw", corrupt, 400, Format{}},
		{"docker save", "docker", "raw", dockerArchive(t, ""), 204, Format{Kind: KindDockerArchive, Config: "abc123.json",
			Layers: []string{"deadbeef/layer.tar"}, RepoTags: []string{"busybox:latest"}}},
		{"gzipped docker save", "docker", "raw", gz(dockerArchive(t, "")), 204, Format{Kind: KindDockerArchive, Compression: "gzip",
			Config: "abc123.json", Layers: []string{"deadbeef/layer.tar"}, RepoTags: []string{"busybox:latest"}}},
		{"docker save missing a layer", "docker", "raw", dockerArchive(t, "deadbeef/layer.tar"), 400, Format{}},
		{"docker save missing its config", "docker", "raw", dockerArchive(t, "abc123.json"), 400, Format{}},
		{"OCI layout", "docker", "raw", oci, 204, Format{Kind: KindOCILayout, Layers: []string{ociLayer}, RepoTags: []string{"latest"}}},
		{"OCI layout with an index", "docker", "raw", ociLayout(t, true, false), 204, Format{Kind: KindOCILayout,
			Layers: []string{ociLayer}, RepoTags: []string{"latest"}}},
		{"OCI layout missing a layer", "docker", "raw", ociLayout(t, false, true), 400, Format{}},
		{"rootfs tar as docker", "docker", "raw", root, 400, Format{}},
		{"raw bytes as docker", "docker", "raw", []byte("just bytes"), 400, Format{}},
		{"anything as ova", "ova", "vmdk", []byte("just bytes"), 204, Format{Kind: KindRaw, Note: "too short to be a tar archive"}},
	}
	for _, c := range cases {
		id := tc.create(tc.demo, map[string]any{"name": c.name, "container_format": c.container, "disk_format": c.disk})["id"].(string)
		res := tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, c.data)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		if c.status != 204 {
			if im := tc.show(tc.demo, id); im["status"] != "queued" {
				t.Errorf("%s: refused data left status %v", c.name, im["status"])
			}
			continue
		}
		rc, im, err := tc.img.Open(t.Context(), id)
		if err != nil {
			t.Errorf("%s: Open: %v", c.name, err)
			continue
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, c.data) {
			t.Errorf("%s: Open returned other bytes", c.name)
		}
		f := im.Format
		if c.want.Kind == KindOCILayout {
			c.want.Config = f.Config // a digest path; checked for existence by the scan
		}
		if f.Kind != c.want.Kind || f.Compression != c.want.Compression || f.Entries != c.want.Entries ||
			f.Config != c.want.Config || !slices.Equal(f.Layers, c.want.Layers) || !slices.Equal(f.RepoTags, c.want.RepoTags) ||
			f.Note != c.want.Note || (c.want.VirtualSize != 0 && f.VirtualSize != c.want.VirtualSize) {
			t.Errorf("%s: format %+v, want %+v", c.name, f, c.want)
		}
	}
	if files := tc.dataFiles(); len(files) != 9 {
		t.Errorf("%d data files, want one per accepted image: %v", len(files), files)
	}
}
