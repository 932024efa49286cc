package testcloud

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Response is an HTTP response with its body read.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// JSON decodes the body as a JSON object, failing the test if it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// List decodes the body as a JSON list of objects, failing the test if it
// is not one.
func (r Response) List(t testing.TB) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("body is not a JSON list: %v: %s", err, r.Body)
	}
	return l
}

// Must fails the test unless the response has the wanted status.
func Must(t testing.TB, want int, res Response) Response {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, want, res.Body)
	}
	return res
}

// NewRequest builds a request. A nil body sends none; a string, []byte or
// io.Reader body is sent as is, with no Content-Type; anything else is
// sent as JSON with Content-Type application/json. A non-empty token is
// sent as X-Auth-Token. headers are name, value pairs, set in order after
// those.
func NewRequest(t testing.TB, method, url, token string, body any, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd, isJSON = bytes.NewReader(j), true
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// Send sends a request with client (http.DefaultClient when nil) and
// reads the whole response.
func Send(t testing.TB, client *http.Client, req *http.Request) Response {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body) // a body cut short is for the test to judge
	return Response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

// Do sends a request built by NewRequest with http.DefaultClient.
func Do(t testing.TB, method, url, token string, body any, headers ...string) Response {
	t.Helper()
	return Send(t, nil, NewRequest(t, method, url, token, body, headers...))
}
