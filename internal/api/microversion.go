package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Version is an API microversion such as 2.79.
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseVersion parses "X.Y".
func ParseVersion(s string) (Version, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	maj, err1 := strconv.Atoi(a)
	min, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || maj < 0 || min < 0 {
		return Version{}, fmt.Errorf("invalid version %q", s)
	}
	return Version{maj, min}, nil
}

// Microversions describes a service's supported range, as negotiated with
// the OpenStack-API-Version header ("compute 2.79") and, where the service
// has one, its legacy header (X-OpenStack-Nova-API-Version).
type Microversions struct {
	Service  string // "compute", "volume", "placement", "container"
	Min, Max Version
	Legacy   string // legacy header name, or ""
}

// Handler is fn behind the negotiation: the version the request asks
// for is settled (or the request refused) before fn runs with it.
func (m Microversions) Handler(fn func(http.ResponseWriter, *http.Request, Version) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := m.Negotiate(w, r)
		if err != nil {
			return err
		}
		return fn(w, r, v)
	}
}

// Negotiate returns the version the request asks for (Min when it asks for
// none, Max for "latest") and sets the response headers saying which version
// answered. A malformed version is a 400; one out of range is a 406.
func (m Microversions) Negotiate(w http.ResponseWriter, r *http.Request) (Version, error) {
	want := ""
	for _, h := range r.Header.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(h, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, m.Service) {
				want = strings.TrimSpace(ver)
			}
		}
	}
	if want == "" && m.Legacy != "" {
		want = strings.TrimSpace(r.Header.Get(m.Legacy))
	}
	v := m.Min
	switch {
	case want == "":
	case strings.EqualFold(want, "latest"):
		v = m.Max
	default:
		var err error
		if v, err = ParseVersion(want); err != nil {
			return Version{}, BadRequest("Invalid API version request: %q.", want)
		}
		if !v.AtLeast(m.Min.Major, m.Min.Minor) || !m.Max.AtLeast(v.Major, v.Minor) {
			return Version{}, Errorf(http.StatusNotAcceptable,
				"Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, m.Min, m.Max)
		}
	}
	w.Header().Set("OpenStack-API-Version", m.Service+" "+v.String())
	w.Header().Add("Vary", "OpenStack-API-Version")
	if m.Legacy != "" {
		w.Header().Set(m.Legacy, v.String())
		w.Header().Add("Vary", m.Legacy)
	}
	return v, nil
}
