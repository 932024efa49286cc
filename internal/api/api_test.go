package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/monostack/monostack/internal/store"
)

type fakeAuth map[string]*Credentials

func (f fakeAuth) Authenticate(ctx context.Context, tok string) (*Credentials, error) {
	if c, ok := f[tok]; ok {
		return c, nil
	}
	return nil, Unauthorized("bad token")
}

func testRouter() *Router {
	rt := NewRouter(RouterConfig{Prefix: "/svc", Fault: NovaFault, AuthURI: "http://id/identity", Auth: fakeAuth{
		"admin":  {UserID: "u1", Roles: []string{"admin", "member", "reader"}, ProjectID: "p", IsAdminProject: true},
		"member": {UserID: "u2", Roles: []string{"member", "reader"}, ProjectID: "q"},
	}})
	rt.Public("GET /open", func(w http.ResponseWriter, r *http.Request) error { w.Write([]byte("hi")); return nil })
	rt.Handle("GET /things/{id}", Authenticated, func(w http.ResponseWriter, r *http.Request) error {
		switch r.PathValue("id") {
		case "missing":
			return fmt.Errorf("lookup: %w", store.ErrNotFound)
		case "dup":
			return store.ErrConflict
		case "boom":
			return errors.New("disk on fire")
		case "panic":
			panic("oops")
		}
		WriteJSON(w, 200, map[string]string{"user": CredentialsFrom(r.Context()).UserID})
		return nil
	})
	rt.Handle("POST /things", AdminOnly, func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Thing struct {
				Name string `json:"name"`
				Size int    `json:"size"`
			} `json:"thing"`
		}
		if err := DecodeJSON(r, &body); err != nil {
			return err
		}
		WriteJSON(w, 201, body)
		return nil
	})
	return rt
}

func TestRouterFaultsAndPolicy(t *testing.T) {
	srv := httptest.NewServer(WithRequestID(nil, testRouter()))
	defer srv.Close()
	cases := []struct {
		method, path, token, body string
		status                    int
		fault                     string
	}{
		{"GET", "/svc/open", "", "", 200, ""},
		{"GET", "/svc/things/1", "", "", 401, "unauthorized"},
		{"GET", "/svc/things/1", "nope", "", 401, "unauthorized"},
		{"GET", "/svc/things/1", "member", "", 200, ""},
		{"GET", "/svc/things/missing", "member", "", 404, "itemNotFound"},
		{"GET", "/svc/things/dup", "member", "", 409, "conflictingRequest"},
		{"GET", "/svc/things/boom", "member", "", 500, "computeFault"},
		{"GET", "/svc/things/panic", "member", "", 500, "computeFault"},
		{"GET", "/svc/unknown", "member", "", 404, "itemNotFound"},
		{"DELETE", "/svc/things/1", "member", "", 405, "badMethod"},
		{"POST", "/svc/things", "member", `{"thing":{}}`, 403, "forbidden"},
		{"POST", "/svc/things", "admin", `{"thing":{"name":"a","size":1}}`, 201, ""},
		{"POST", "/svc/things", "admin", `{"thing":`, 400, "badRequest"},
		{"POST", "/svc/things", "admin", ``, 400, "badRequest"},
		{"POST", "/svc/things", "admin", `{"thing":{"size":"big"}}`, 400, "badRequest"},
		{"POST", "/svc/things", "admin", `{"thing":{}} {}`, 400, "badRequest"},
		{"POST", "/svc/things", "admin", `{"thing":{"name":"` + strings.Repeat("x", MaxBody) + `"}}`, 413, "overLimit"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if c.token != "" {
			req.Header.Set("X-Auth-Token", c.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d (%v)", c.method, c.path, res.StatusCode, c.status, body)
			continue
		}
		if !strings.HasPrefix(res.Header.Get(RequestIDHeader), "req-") {
			t.Errorf("%s %s: no request id", c.method, c.path)
		}
		if c.fault != "" {
			f, ok := body[c.fault]
			if !ok || f["message"] == "" || int(f["code"].(float64)) != c.status {
				t.Errorf("%s %s: fault body %v, want %s", c.method, c.path, body, c.fault)
			}
		}
		if c.status == 401 && !strings.Contains(res.Header.Get("WWW-Authenticate"), `Keystone uri="http://id/identity"`) {
			t.Errorf("%s %s: WWW-Authenticate %q", c.method, c.path, res.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestWrongTypeMessageNamesField(t *testing.T) {
	var v struct {
		Server struct {
			Name string `json:"name"`
		} `json:"server"`
	}
	err := Unmarshal([]byte(`{"server":{"name":5}}`), &v)
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || !strings.Contains(e.Message, "server/name") {
		t.Fatalf("got %v", err)
	}
}

func TestPaging(t *testing.T) {
	r := httptest.NewRequest("GET", "http://h/svc/things?limit=2&marker=a&name=x", nil)
	p, err := ParsePage(r, 10, 100)
	if err != nil || p.Limit != 2 || p.Marker != "a" {
		t.Fatalf("%+v %v", p, err)
	}
	l := NextLink(r, p, 2, "c")
	if l == nil || l.Rel != "next" || !strings.Contains(l.Href, "marker=c") || !strings.Contains(l.Href, "name=x") {
		t.Fatalf("next link %+v", l)
	}
	if NextLink(r, p, 1, "c") != nil {
		t.Fatal("a short page has no next link")
	}
	if p, _ := ParsePage(httptest.NewRequest("GET", "/x?limit=5000", nil), 10, 100); p.Limit != 100 {
		t.Fatalf("limit not capped: %d", p.Limit)
	}
	for _, bad := range []string{"-1", "x", "1.5"} {
		if _, err := ParsePage(httptest.NewRequest("GET", "/x?limit="+bad, nil), 10, 100); err == nil {
			t.Errorf("limit=%s accepted", bad)
		}
	}
}

func TestMicroversions(t *testing.T) {
	m := Microversions{Service: "compute", Min: Version{2, 1}, Max: Version{2, 96}, Legacy: "X-OpenStack-Nova-API-Version"}
	cases := []struct {
		header, value string
		want          string
		status        int
	}{
		{"", "", "2.1", 0},
		{"OpenStack-API-Version", "compute 2.79", "2.79", 0},
		{"OpenStack-API-Version", "volume 3.0, compute latest", "2.96", 0},
		{"X-OpenStack-Nova-API-Version", "2.10", "2.10", 0},
		{"OpenStack-API-Version", "compute 2.200", "", 406},
		{"OpenStack-API-Version", "compute 1.9", "", 406},
		{"OpenStack-API-Version", "compute two", "", 400},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set(c.header, c.value)
		}
		w := httptest.NewRecorder()
		v, err := m.Negotiate(w, r)
		if c.status != 0 {
			var e *Error
			if !errors.As(err, &e) || e.Status != c.status {
				t.Errorf("%s: %v, want %d", c.value, err, c.status)
			}
			continue
		}
		if err != nil || v.String() != c.want || w.Header().Get("OpenStack-API-Version") != "compute "+c.want {
			t.Errorf("%s: %v %v %q", c.value, v, err, w.Header().Get("OpenStack-API-Version"))
		}
	}

	// Handler: the handler runs with the negotiated version, or not at all.
	var got string
	h := m.Handler(func(w http.ResponseWriter, r *http.Request, v Version) error { got = v.String(); return nil })
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("OpenStack-API-Version", "compute 2.79")
	if err := h(httptest.NewRecorder(), r); err != nil || got != "2.79" {
		t.Errorf("Handler with 2.79: ran with %q, %v", got, err)
	}
	got = ""
	r.Header.Set("OpenStack-API-Version", "compute 2.200")
	if err := h(httptest.NewRecorder(), r); err == nil || got != "" {
		t.Errorf("Handler with 2.200: ran with %q, %v", got, err)
	}
}

// TestClientGoneIs499: a handler that fails because its client went away
// (the request's context is done) is answered 499 and logged at debug, not
// as a server error.
func TestClientGoneIs499(t *testing.T) {
	var logs bytes.Buffer
	rt := NewRouter(RouterConfig{Prefix: "/svc", Fault: NovaFault, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	rt.Public("GET /slow", func(w http.ResponseWriter, r *http.Request) error {
		<-r.Context().Done()
		return fmt.Errorf("reading: %w", r.Context().Err())
	})
	rt.Public("GET /boom", func(w http.ResponseWriter, r *http.Request) error { return errors.New("disk on fire") })
	rt.Public("GET /panic", func(w http.ResponseWriter, r *http.Request) error { panic("nil map") })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("GET", "/svc/slow", nil).WithContext(ctx))
	if w.Code != StatusClientClosed || logs.Len() != 0 {
		t.Errorf("a client gone: %d, logged %q", w.Code, logs.String())
	}
	// A failure of its own is the server's, client gone or not.
	for _, path := range []string{"/svc/boom", "/svc/panic"} {
		logs.Reset()
		w = httptest.NewRecorder()
		rt.ServeHTTP(w, httptest.NewRequest("GET", path, nil).WithContext(ctx))
		if w.Code != 500 || !strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("%s with the client gone: %d, logged %q", path, w.Code, logs.String())
		}
	}
	logs.Reset()
	w = httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest("GET", "/svc/boom", nil))
	if w.Code != 500 || !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("a server error: %d, logged %q", w.Code, logs.String())
	}
}
