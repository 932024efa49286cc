package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// Kinds of image data, as found by inspecting the bytes.
const (
	// KindRootfsTar: a tarball of a root filesystem (container_format bare).
	KindRootfsTar = "rootfs-tar"
	// KindDockerArchive: a `docker save` tarball (manifest.json, a config,
	// layer tarballs).
	KindDockerArchive = "docker-archive"
	// KindOCILayout: an OCI image-layout tarball (oci-layout, index.json,
	// blobs/<alg>/<hex>).
	KindOCILayout = "oci-layout"
	// KindRaw: bytes that are not a tarball (a disk image, say).
	KindRaw = "raw"
)

// Format is what an image's bytes were found to be when they were uploaded
// or imported; compute uses it to decide how to make a root filesystem.
type Format struct {
	Kind string `json:"kind,omitempty"`
	// Compression of the whole file: "" or "gzip".
	Compression string `json:"compression,omitempty"`
	// Entries is the number of tar entries (rootfs tarballs).
	Entries int `json:"entries,omitempty"`
	// Config is the path, inside the tarball, of the image config JSON
	// (docker and OCI).
	Config string `json:"config,omitempty"`
	// Layers are the paths, inside the tarball, of the layer tarballs,
	// bottom first (docker and OCI).
	Layers []string `json:"layers,omitempty"`
	// RepoTags are the names a docker archive carries, or the OCI
	// ref.name annotations.
	RepoTags []string `json:"repo_tags,omitempty"`
	// Note says why the data is not a root filesystem tarball (raw).
	Note string `json:"note,omitempty"`
	// VirtualSize of a disk image (qcow2 header; the size for raw).
	VirtualSize int64 `json:"virtual_size,omitempty"`
}

// IsRootfs reports whether the data can be unpacked as a root filesystem
// as is.
func (f Format) IsRootfs() bool { return f.Kind == KindRootfsTar }

// IsContainerImage reports whether the data is a docker or OCI image.
func (f Format) IsContainerImage() bool {
	return f.Kind == KindDockerArchive || f.Kind == KindOCILayout
}

// errFormat is data that does not match its container_format.
func errFormat(format string, args ...any) error {
	return api.BadRequest("Image data does not match its container_format: "+format, args...)
}

// inspect reads the file at name and says what it is. containerFormat and
// diskFormat are what the image claims: a docker image must be a docker
// archive or an OCI layout; a bare image is a rootfs tarball or, for disk
// formats, anything that is not a broken tarball. Other container formats
// are recorded but not checked.
func inspect(name, containerFormat, diskFormat string) (Format, error) {
	f, err := os.Open(name)
	if err != nil {
		return Format{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Format{}, err
	}
	found, tarErr := scanFile(f)
	if found.Kind == KindRaw {
		found.VirtualSize = diskVirtualSize(f, diskFormat, st.Size())
	}
	switch containerFormat {
	case "docker":
		if tarErr != nil {
			return found, errFormat("docker images must be a `docker save` or OCI image-layout tarball: %v", tarErr)
		}
		if !found.IsContainerImage() {
			return found, errFormat("docker images must be a `docker save` or OCI image-layout tarball, " +
				"but no manifest.json or oci-layout was found.")
		}
	case "bare":
		if tarErr != nil {
			return found, errFormat("the data starts as a tar archive but cannot be read: %v", tarErr)
		}
	default:
		if tarErr != nil { // not ours to judge: record it as raw bytes
			found = Format{Kind: KindRaw, Note: "unreadable tar archive: " + tarErr.Error()}
		}
	}
	if diskFormat == "raw" && found.VirtualSize == 0 {
		found.VirtualSize = st.Size()
	}
	return found, nil
}

// scanFile walks the tarball in r (plain or gzip-compressed). A file that
// does not start as a tarball is KindRaw with no error; one that starts as a
// tarball and then breaks returns the error.
func scanFile(r io.ReadSeeker) (Format, error) {
	var head [512]byte
	n, _ := io.ReadFull(r, head[:])
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return Format{}, err
	}
	var src io.Reader = r
	var out Format
	if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return Format{Kind: KindRaw, Note: "gzip data that cannot be read"}, nil
		}
		defer zr.Close()
		src, out.Compression = zr, "gzip"
		if _, err := io.ReadFull(zr, head[:]); err != nil {
			return Format{Kind: KindRaw, Compression: "gzip", Note: "gzip data, not a tar archive"}, nil
		}
		src = io.MultiReader(bytes.NewReader(head[:]), zr)
	} else if n < 512 {
		return Format{Kind: KindRaw, Note: "too short to be a tar archive"}, nil
	}
	if !tarHeader(head[:]) {
		out.Kind, out.Note = KindRaw, "not a tar archive"
		return out, nil
	}
	s := newTarScan()
	err := s.walk(src)
	if err != nil {
		out.Kind = KindRootfsTar
		return out, err
	}
	res, err := s.result()
	res.Compression = out.Compression
	return res, err
}

// tarHeader reports whether b is a tar header block with a valid checksum.
func tarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	var sum, ssum int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
		ssum += int64(int8(c))
	}
	field := strings.TrimRight(strings.TrimSpace(string(bytes.TrimRight(b[148:156], "\x00 "))), "\x00")
	var want int64
	if _, err := fmt.Sscanf(field, "%o", &want); err != nil {
		return false
	}
	return want == sum || want == ssum
}

// tarScan collects, in one pass over a tarball, what is needed to recognise
// a docker archive or an OCI layout: the names of its files and the small
// JSON documents among them.
type tarScan struct {
	entries int
	files   map[string]bool
	small   map[string][]byte // small files that may be manifests or indexes
	kept    int64             // bytes of blobs in small
}

func newTarScan() *tarScan {
	return &tarScan{files: map[string]bool{}, small: map[string][]byte{}}
}

// Limits on what a scan keeps in memory: the largest manifest or index
// read, and the total of the small blobs kept (manifests and configs are a
// few KiB; small layers beyond the budget are only noted as present).
const (
	maxSmall = 1 << 20
	maxKept  = 32 << 20
)

func cleanName(n string) string {
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/")
}

func (s *tarScan) walk(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if s.entries == 0 {
				return errors.New("empty tar archive")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("after %d entries: %w", s.entries, err)
		}
		s.entries++
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		name := cleanName(h.Name)
		depth := strings.Count(name, "/")
		if depth > 2 && !strings.HasPrefix(name, "blobs/") {
			continue // deep in a root filesystem: not part of an image layout
		}
		s.files[name] = true
		layoutFile := name == "manifest.json" || name == "oci-layout" || name == "index.json"
		blob := strings.HasPrefix(name, "blobs/") && s.kept+h.Size <= maxKept
		if h.Size <= maxSmall && (layoutFile || blob) {
			b, err := io.ReadAll(io.LimitReader(tr, maxSmall+1))
			if err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			s.small[name] = b
			s.kept += int64(len(b))
		}
	}
}

type dockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type ociIndex struct {
	MediaType string          `json:"mediaType"`
	Manifests []ociDescriptor `json:"manifests"`
	Config    *ociDescriptor  `json:"config"`
	Layers    []ociDescriptor `json:"layers"`
}

func (s *tarScan) result() (Format, error) {
	if b, ok := s.small["manifest.json"]; ok {
		var ms []dockerManifest
		if err := json.Unmarshal(b, &ms); err == nil && len(ms) > 0 && ms[0].Config != "" {
			m := ms[0]
			f := Format{Kind: KindDockerArchive, Config: cleanName(m.Config), RepoTags: m.RepoTags}
			if !s.files[f.Config] {
				return f, errFormat("the docker archive's manifest.json names config %s, which it does not contain.", m.Config)
			}
			for _, l := range m.Layers {
				l = cleanName(l)
				if !s.files[l] {
					return f, errFormat("the docker archive's manifest.json names layer %s, which it does not contain.", l)
				}
				f.Layers = append(f.Layers, l)
			}
			return f, nil
		}
	}
	if _, ok := s.small["oci-layout"]; ok {
		return s.ociResult()
	}
	return Format{Kind: KindRootfsTar, Entries: s.entries}, nil
}

func blobPath(digest string) string {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg == "" || hex == "" || strings.ContainsAny(digest, "/\\") {
		return ""
	}
	return "blobs/" + alg + "/" + hex
}

func (s *tarScan) ociResult() (Format, error) {
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(s.small["oci-layout"], &layout); err != nil || layout.Version == "" {
		return Format{Kind: KindOCILayout}, errFormat("the OCI layout's oci-layout file is not valid.")
	}
	var idx ociIndex
	if err := json.Unmarshal(s.small["index.json"], &idx); err != nil || len(idx.Manifests) == 0 {
		return Format{Kind: KindOCILayout}, errFormat("the OCI layout has no valid index.json listing a manifest.")
	}
	f := Format{Kind: KindOCILayout}
	for _, d := range idx.Manifests {
		if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
			f.RepoTags = append(f.RepoTags, n)
		}
	}
	// Follow indexes down to one image manifest, preferring linux/amd64.
	desc := pickManifest(idx.Manifests)
	for depth := 0; depth < 4; depth++ {
		p := blobPath(desc.Digest)
		b, ok := s.small[p]
		if p == "" || !ok {
			return f, errFormat("the OCI layout does not contain the blob %s its index refers to.", desc.Digest)
		}
		var m ociIndex
		if err := json.Unmarshal(b, &m); err != nil {
			return f, errFormat("the OCI blob %s is not a valid manifest.", desc.Digest)
		}
		if len(m.Manifests) > 0 { // a nested index
			desc = pickManifest(m.Manifests)
			continue
		}
		if m.Config == nil {
			return f, errFormat("the OCI manifest %s has no config.", desc.Digest)
		}
		f.Config = blobPath(m.Config.Digest)
		if !s.files[f.Config] {
			return f, errFormat("the OCI layout does not contain the config blob %s.", m.Config.Digest)
		}
		for _, l := range m.Layers {
			lp := blobPath(l.Digest)
			if lp == "" || !s.files[lp] {
				return f, errFormat("the OCI layout does not contain the layer blob %s.", l.Digest)
			}
			f.Layers = append(f.Layers, lp)
		}
		return f, nil
	}
	return f, errFormat("the OCI layout's indexes nest too deeply.")
}

func pickManifest(ds []ociDescriptor) ociDescriptor {
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			return d
		}
	}
	return ds[0]
}

// diskVirtualSize reads a qcow2 header's virtual size; raw disks are their
// own size. Other formats are not inspected (0).
func diskVirtualSize(r io.ReadSeeker, diskFormat string, size int64) int64 {
	switch diskFormat {
	case "qcow2":
		var h [32]byte
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return 0
		}
		if _, err := io.ReadFull(r, h[:]); err != nil || string(h[:4]) != "QFI\xfb" {
			return 0
		}
		return int64(binary.BigEndian.Uint64(h[24:32]))
	case "raw", "iso":
		return size
	}
	return 0
}
