package image

import (
	"io"
	"net/http"
	"testing"

	"github.com/monostack/monostack/internal/pattern"
)

const benchSize = 256 << 20

// BenchmarkUpload streams a 256 MiB image through PUT /file: receive,
// MD5 and SHA-512, fsync, inspection, rename. MB/s is the figure to read;
// B/op shows the upload is not held in memory.
func BenchmarkUpload(b *testing.B) {
	tc := newTestCloud(b, Config{})
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
		req, _ := http.NewRequest("PUT", tc.srv.URL+"/image/v2/images/"+id+"/file", pattern.New(benchSize))
		req.ContentLength = benchSize
		req.Header.Set("X-Auth-Token", tc.demo)
		req.Header.Set("Content-Type", "application/octet-stream")
		b.StartTimer()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 204 {
			b.Fatalf("upload: %d", res.StatusCode)
		}
		b.StopTimer()
		tc.must(204, tc.do("DELETE", "/image/v2/images/"+id, tc.demo, nil))
		b.StartTimer()
	}
}

// BenchmarkDownload reads a 256 MiB image back through GET /file.
func BenchmarkDownload(b *testing.B) {
	tc := newTestCloud(b, Config{})
	id := tc.create(tc.demo, map[string]any{"disk_format": "raw", "container_format": "bare"})["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.demo, pattern.New(benchSize)))
	buf := make([]byte, 1<<20)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("GET", tc.srv.URL+"/image/v2/images/"+id+"/file", nil)
		req.Header.Set("X-Auth-Token", tc.demo)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, res.Body, buf)
		res.Body.Close()
		if err != nil || n != benchSize || res.StatusCode != 200 {
			b.Fatalf("download: %d bytes, status %d, %v", n, res.StatusCode, err)
		}
	}
}
