package api

import (
	"net/http"
	"net/url"
	"strconv"
)

// Page is a limit/marker request: at most Limit items after the one whose id
// is Marker.
type Page struct {
	Limit  int
	Marker string
}

// ParsePage reads ?limit= and ?marker=. A missing limit is def; a limit over
// max is max; a non-positive or non-numeric limit is a 400.
func ParsePage(r *http.Request, def, max int) (Page, error) {
	q := r.URL.Query()
	p := Page{Limit: def, Marker: q.Get("marker")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return p, BadRequest("limit must be a non-negative integer, not %q.", s)
		}
		p.Limit = n
	}
	if max > 0 && (p.Limit > max || p.Limit == 0 && def == 0) {
		p.Limit = max
	}
	return p, nil
}

// Link is one entry of a "links" list.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// NextLink returns the link to the page after one that returned n items
// ending at lastID, or nil when the page was not full (the last page).
func NextLink(r *http.Request, p Page, n int, lastID string) *Link {
	if p.Limit <= 0 || n < p.Limit || lastID == "" {
		return nil
	}
	q := r.URL.Query()
	q.Set("marker", lastID)
	q.Set("limit", strconv.Itoa(p.Limit))
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return &Link{Rel: "next", Href: BaseURL(r) + u.String()}
}
