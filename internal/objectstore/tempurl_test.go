package objectstore

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sign makes a TempURL query for method on path (from /v1/ on).
func sign(newHash func() hash.Hash, key, method, path string, expires int64, b64 string) string {
	mac := hmac.New(newHash, []byte(key))
	fmt.Fprintf(mac, "%s\n%d\n%s", method, expires, path)
	sig := hex.EncodeToString(mac.Sum(nil))
	if b64 != "" {
		sig = b64 + ":" + base64.URLEncoding.EncodeToString(mac.Sum(nil))
	}
	return "?temp_url_sig=" + url.QueryEscape(sig) + "&temp_url_expires=" + strconv.FormatInt(expires, 10)
}

func TestTempURL(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkContainer("c")
	tc.put("c", "file.txt", "secret contents", "X-Object-Meta-Private", "p", "X-Object-Meta-Public-Note", "n")
	tc.must(204, tc.do("POST", acct(tc.demoProject), tc.demo, nil, "X-Account-Meta-Temp-URL-Key", "akey"))
	exp := time.Now().Add(time.Hour).Unix()
	v1 := "/v1/AUTH_" + tc.demoProject + "/c/file.txt"
	obj := tc.demoPath("c", "file.txt")

	for _, c := range []struct {
		name string
		h    func() hash.Hash
		b64  string
	}{{"sha1", sha1.New, ""}, {"sha256", sha256.New, ""}, {"sha512", sha512.New, ""}, {"sha512 base64", sha512.New, "sha512"}, {"sha256 base64", sha256.New, "sha256"}} {
		res := tc.do("GET", obj+sign(c.h, "akey", "GET", v1, exp, c.b64), "", nil)
		if res.StatusCode != 200 || string(res.Body) != "secret contents" {
			t.Errorf("%s: %d %s", c.name, res.StatusCode, res.Body)
			continue
		}
		if res.Header.Get("Content-Disposition") != `attachment; filename="file.txt"; filename*=UTF-8''file.txt` ||
			res.Header.Get("Expires") == "" || res.Header.Get("X-Object-Meta-Private") != "" || res.Header.Get("X-Object-Meta-Public-Note") != "n" {
			t.Errorf("%s: headers %v", c.name, res.Header)
		}
	}
	good := sign(sha256.New, "akey", "GET", v1, exp, "")
	// Signing the whole path (with /object-store) works too.
	tc.must(200, tc.do("GET", obj+sign(sha256.New, "akey", "GET", Prefix+v1, exp, ""), "", nil))
	// HEAD passes with a GET signature; filename and inline.
	tc.must(200, tc.do("HEAD", obj+good, "", nil))
	res := tc.must(200, tc.do("GET", obj+good+"&filename=My+File.pdf", "", nil))
	if res.Header.Get("Content-Disposition") != `attachment; filename="My File.pdf"; filename*=UTF-8''My%20File.pdf` {
		t.Errorf("filename: %q", res.Header.Get("Content-Disposition"))
	}
	res = tc.must(200, tc.do("GET", obj+good+"&inline", "", nil))
	if res.Header.Get("Content-Disposition") != "inline" {
		t.Errorf("inline: %q", res.Header.Get("Content-Disposition"))
	}
	// ISO 8601 expiry (signed with the Unix time).
	iso := time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05Z")
	tc.must(200, tc.do("GET", obj+strings.Replace(good, strconv.FormatInt(exp, 10), iso, 1), "", nil))

	past := time.Now().Add(-time.Minute).Unix()
	for name, path := range map[string]string{
		"wrong key":         obj + sign(sha256.New, "other", "GET", v1, exp, ""),
		"expired":           obj + sign(sha256.New, "akey", "GET", v1, past, ""),
		"other object":      tc.demoPath("c", "other") + good,
		"PUT with GET sig":  obj + good,
		"bad signature":     obj + "?temp_url_sig=zz&temp_url_expires=" + strconv.FormatInt(exp, 10),
		"bad digest name":   obj + "?temp_url_sig=md5:AAAA&temp_url_expires=" + strconv.FormatInt(exp, 10),
		"no expiry":         obj + "?temp_url_sig=" + strings.Repeat("a", 64),
		"garbage expiry":    obj + "?temp_url_sig=" + strings.Repeat("a", 64) + "&temp_url_expires=soon",
		"container listing": tc.demoPath("c") + good,
		"changed expiry":    obj + strings.Replace(good, strconv.FormatInt(exp, 10), strconv.FormatInt(exp+1, 10), 1),
	} {
		method := "GET"
		if strings.HasPrefix(name, "PUT") {
			method = "PUT"
		}
		res := tc.do(method, path, "", "x")
		if res.StatusCode != 401 {
			t.Errorf("%s: %d, want 401", name, res.StatusCode)
		} else if string(res.Body) != "401 Unauthorized: Temp URL invalid\n" {
			t.Errorf("%s: body %q", name, res.Body)
		}
	}
	// PUT through a PUT signature; then GET it back with a token.
	put := tc.demoPath("c", "upload.bin")
	tc.must(201, tc.do("PUT", put+sign(sha256.New, "akey", "PUT", "/v1/AUTH_"+tc.demoProject+"/c/upload.bin", exp, ""), "", "uploaded"))
	if got := tc.must(200, tc.do("GET", put, tc.demo, nil)); string(got.Body) != "uploaded" {
		t.Errorf("PUT through TempURL: %q", got.Body)
	}
	tc.must(400, tc.do("PUT", put+sign(sha256.New, "akey", "PUT", "/v1/AUTH_"+tc.demoProject+"/c/upload.bin", exp, ""), "", "x",
		"X-Object-Manifest", "c/x"))
	// DELETE through a DELETE signature.
	tc.must(204, tc.do("DELETE", put+sign(sha256.New, "akey", "DELETE", "/v1/AUTH_"+tc.demoProject+"/c/upload.bin", exp, ""), "", nil))

	// Container keys grant that container only; key rotation with -Key-2.
	tc.mkContainer("d", "X-Container-Meta-Temp-URL-Key", "ckey", "X-Container-Meta-Temp-URL-Key-2", "ckey2")
	tc.put("d", "x", "in d")
	dv1 := "/v1/AUTH_" + tc.demoProject + "/d/x"
	tc.must(200, tc.do("GET", tc.demoPath("d", "x")+sign(sha256.New, "ckey", "GET", dv1, exp, ""), "", nil))
	tc.must(200, tc.do("GET", tc.demoPath("d", "x")+sign(sha256.New, "ckey2", "GET", dv1, exp, ""), "", nil))
	tc.must(401, tc.do("GET", obj+sign(sha256.New, "ckey", "GET", v1, exp, ""), "", nil))
	// The container's keys are the owner's to see.
	if tc.do("HEAD", tc.demoPath("d"), tc.demo, nil).Header.Get("X-Container-Meta-Temp-Url-Key") != "ckey" {
		t.Error("owner does not see the container key")
	}

	// Prefix-based signatures.
	tc.put("c", "pre/a", "A")
	tc.put("c", "pre/sub/b", "B")
	pmac := hmac.New(sha256.New, []byte("akey"))
	fmt.Fprintf(pmac, "GET\n%d\nprefix:/v1/AUTH_%s/c/pre/", exp, tc.demoProject)
	pq := fmt.Sprintf("?temp_url_sig=%s&temp_url_expires=%d&temp_url_prefix=pre/", hex.EncodeToString(pmac.Sum(nil)), exp)
	tc.must(200, tc.do("GET", tc.demoPath("c", "pre/a")+pq, "", nil))
	tc.must(200, tc.do("GET", tc.demoPath("c", "pre/sub/b")+pq, "", nil))
	tc.must(401, tc.do("GET", obj+pq, "", nil))

	// IP-restricted signatures.
	imac := hmac.New(sha256.New, []byte("akey"))
	fmt.Fprintf(imac, "ip=127.0.0.1\nGET\n%d\n%s", exp, v1)
	iq := fmt.Sprintf("?temp_url_sig=%s&temp_url_expires=%d&temp_url_ip_range=127.0.0.1", hex.EncodeToString(imac.Sum(nil)), exp)
	tc.must(200, tc.do("GET", obj+iq, "", nil))
	imac = hmac.New(sha256.New, []byte("akey"))
	fmt.Fprintf(imac, "ip=10.0.0.0/8\nGET\n%d\n%s", exp, v1)
	iq = fmt.Sprintf("?temp_url_sig=%s&temp_url_expires=%d&temp_url_ip_range=10.0.0.0/8", hex.EncodeToString(imac.Sum(nil)), exp)
	tc.must(401, tc.do("GET", obj+iq, "", nil))
}
