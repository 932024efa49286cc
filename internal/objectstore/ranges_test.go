package objectstore

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRanges(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	body := "0123456789abcdefghij" // 20 bytes
	tc.put("c", "r", body)
	tc.put("c", "empty", "")
	cases := []struct {
		rng, object  string
		status       int
		want, crange string
	}{
		{"bytes=0-4", "r", 206, "01234", "bytes 0-4/20"},
		{"bytes=5-", "r", 206, body[5:], "bytes 5-19/20"},
		{"bytes=-3", "r", 206, "hij", "bytes 17-19/20"},
		{"bytes=-30", "r", 206, body, "bytes 0-19/20"},
		{"bytes=10-100", "r", 206, body[10:], "bytes 10-19/20"},
		{"bytes = 1-2", "r", 206, "12", "bytes 1-2/20"},
		{"bytes=20-", "r", 416, "", "bytes */20"},
		{"bytes=-0", "r", 416, "", "bytes */20"},
		{"bytes=5-3", "r", 200, body, ""}, // invalid: ignored
		{"bytes=x-3", "r", 200, body, ""}, // invalid: ignored
		{"items=0-3", "r", 200, body, ""}, // not bytes: ignored
		{"bytes=-", "r", 200, body, ""},   // invalid: ignored
		{"bytes=0-0", "r", 206, "0", "bytes 0-0/20"},
		{"bytes=-5", "empty", 200, "", ""}, // suffix of nothing: the whole nothing
		{"bytes=0-", "empty", 416, "", "bytes */0"},
	}
	for _, c := range cases {
		res := tc.do("GET", tc.demoPath("c", c.object), tc.demo, nil, "Range", c.rng)
		if res.StatusCode != c.status || c.status != 416 && string(res.Body) != c.want || res.Header.Get("Content-Range") != c.crange {
			t.Errorf("%s: %d %q %q, want %d %q %q", c.rng, res.StatusCode, res.Body, res.Header.Get("Content-Range"), c.status, c.want, c.crange)
		}
	}
	// Several ranges: multipart/byteranges with Swift's parts.
	res := tc.must(206, tc.do("GET", tc.demoPath("c", "r"), tc.demo, nil, "Range", "bytes=0-1,5-6,-2"))
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" || len(params["boundary"]) != 32 {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	if res.Header.Get("Content-Length") != "" && res.Header.Get("Content-Length") != itoa(len(res.Body)) {
		t.Errorf("Content-Length %s for %d bytes", res.Header.Get("Content-Length"), len(res.Body))
	}
	mr := multipart.NewReader(strings.NewReader(string(res.Body)), params["boundary"])
	var parts, ranges []string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(part)
		parts = append(parts, string(b))
		ranges = append(ranges, part.Header.Get("Content-Range"))
		if part.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("part type %q", part.Header.Get("Content-Type"))
		}
	}
	if strings.Join(parts, ",") != "01,56,ij" || strings.Join(ranges, ",") != "bytes 0-1/20,bytes 5-6/20,bytes 18-19/20" {
		t.Errorf("parts %q ranges %q", parts, ranges)
	}
	// Unsatisfiable ranges among satisfiable ones are dropped.
	res = tc.must(206, tc.do("GET", tc.demoPath("c", "r"), tc.demo, nil, "Range", "bytes=50-60,2-3"))
	if string(res.Body) != "23" {
		t.Errorf("mixed ranges: %q", res.Body)
	}
	// Egregious sets are refused.
	tc.must(416, tc.do("GET", tc.demoPath("c", "r"), tc.demo, nil, "Range", "bytes=0-5,1-6,2-7,3-8"))
	many := []string{}
	for range 51 {
		many = append(many, "0-0")
	}
	tc.must(416, tc.do("GET", tc.demoPath("c", "r"), tc.demo, nil, "Range", "bytes="+strings.Join(many, ",")))
	// HEAD ignores Range.
	if res := tc.must(200, tc.do("HEAD", tc.demoPath("c", "r"), tc.demo, nil, "Range", "bytes=0-1")); res.Header.Get("Content-Length") != "20" {
		t.Errorf("HEAD with range: %v", res.Header)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestConditionalRequests(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "o", "conditional")
	etag := md5hex("conditional")
	head := tc.must(200, tc.do("HEAD", tc.demoPath("c", "o"), tc.demo, nil))
	lm, err := http.ParseTime(head.Header.Get("Last-Modified"))
	if err != nil {
		t.Fatal(err)
	}
	before := lm.Add(-time.Hour).Format(http.TimeFormat)
	after := lm.Add(time.Hour).Format(http.TimeFormat)
	exact := lm.Format(http.TimeFormat)
	cases := []struct {
		h, v   string
		status int
	}{
		{"If-Match", etag, 200},
		{"If-Match", `"` + etag + `"`, 200},
		{"If-Match", `"nope", "` + etag + `"`, 200},
		{"If-Match", "*", 200},
		{"If-Match", "nope", 412},
		{"If-None-Match", etag, 304},
		{"If-None-Match", "*", 304},
		{"If-None-Match", "nope", 200},
		{"If-Modified-Since", before, 200},
		{"If-Modified-Since", exact, 304},
		{"If-Modified-Since", after, 304},
		{"If-Modified-Since", "garbage", 200},
		{"If-Unmodified-Since", before, 412},
		{"If-Unmodified-Since", exact, 200},
		{"If-Unmodified-Since", after, 200},
	}
	for _, m := range []string{"GET", "HEAD"} {
		for _, c := range cases {
			res := tc.do(m, tc.demoPath("c", "o"), tc.demo, nil, c.h, c.v)
			if res.StatusCode != c.status {
				t.Errorf("%s %s: %s: %d, want %d", m, c.h, c.v, res.StatusCode, c.status)
			}
			if c.status == 304 && (res.Header.Get("Etag") != etag || len(res.Body) != 0) {
				t.Errorf("%s %s: 304 without etag or with a body", m, c.h)
			}
		}
	}
	// Conditions come before ranges.
	tc.must(304, tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil, "If-None-Match", etag, "Range", "bytes=0-1"))
	tc.must(206, tc.do("GET", tc.demoPath("c", "o"), tc.demo, nil, "If-Match", etag, "Range", "bytes=0-1"))
}

func TestParseRange(t *testing.T) {
	for h, ok := range map[string]bool{
		"bytes=0-1": true, "bytes=-1": true, "bytes=1-": true, "BYTES=1-2": true, "bytes=1-2,4-5": true,
		"": false, "bytes=": false, "bytes=1": false, "bytes=2-1": false, "bytes=a-b": false, "bytes=--1": false, "bits=1-2": false,
	} {
		if _, got := parseRange(h); got != ok {
			t.Errorf("parseRange(%q) = %v, want %v", h, got, ok)
		}
	}
}
