package image

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestListPagingSortingFilters(t *testing.T) {
	tc := newTestCloud(t, Config{})
	names := []string{"delta", "alpha", "echo", "charlie", "bravo", "foxtrot", "golf"}
	ids := map[string]string{}
	for i, n := range names {
		body := map[string]any{"name": n, "disk_format": "raw", "container_format": "bare", "os_distro": "d" + fmt.Sprint(i%2)}
		if i%3 == 0 {
			body["tags"] = []string{"three"}
		}
		if n == "echo" {
			body["container_format"] = "ova"
			body["protected"] = true
		}
		ids[n] = tc.upload(tc.demo, body, make([]byte, 100*(i+1)))
	}
	queued := tc.create(tc.demo, map[string]any{"name": "hotel"})["id"].(string)
	ids["hotel"] = queued
	nameOf := map[string]string{}
	for n, id := range ids {
		nameOf[id] = n
	}
	namesOf := func(q string) []string {
		var out []string
		for _, id := range tc.listIDs(tc.demo, q) {
			out = append(out, nameOf[id])
		}
		return out
	}

	// Paging: follow "next" until it stops, with several sorts.
	for _, sort := range []string{"sort=name:asc", "sort_key=name&sort_dir=desc", "sort=size:desc,name", "sort_key=status&sort_key=name&sort_dir=asc",
		"", "sort=created_at:asc"} {
		var seen []string
		path := "/image/v2/images?limit=3"
		if sort != "" {
			path += "&" + sort
		}
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatalf("%s: too many pages", sort)
			}
			res := tc.must(200, tc.do("GET", path, tc.demo, nil)).JSON(t)
			for _, im := range res["images"].([]any) {
				seen = append(seen, nameOf[im.(map[string]any)["id"].(string)])
			}
			if res["schema"] != "/v2/schemas/images" || !strings.HasPrefix(res["first"].(string), "/v2/images?") {
				t.Errorf("list body keys: %v %v", res["schema"], res["first"])
			}
			if strings.Contains(res["first"].(string), "marker=") {
				t.Errorf("first has a marker: %v", res["first"])
			}
			path = ""
			if next, ok := res["next"].(string); ok {
				u, _ := url.Parse(next)
				if !strings.HasPrefix(next, "/v2/images?") || u.Query().Get("limit") != "3" {
					t.Fatalf("next %q", next)
				}
				path = "/image" + next
			}
		}
		if len(seen) != len(ids) {
			t.Errorf("%s: paged through %v", sort, seen)
		}
		whole := namesOf("?limit=100&" + sort)
		if !slices.Equal(seen, whole) {
			t.Errorf("%s: pages %v differ from one list %v", sort, seen, whole)
		}
		switch sort {
		case "sort=name:asc":
			if !slices.IsSorted(seen) {
				t.Errorf("name asc: %v", seen)
			}
		case "sort_key=name&sort_dir=desc":
			if !slices.IsSortedFunc(seen, func(a, b string) int { return strings.Compare(b, a) }) {
				t.Errorf("name desc: %v", seen)
			}
		case "sort=size:desc,name":
			if seen[0] != "golf" || seen[len(seen)-1] != "hotel" { // NULL size last when descending
				t.Errorf("size desc: %v", seen)
			}
		case "sort_key=status&sort_key=name&sort_dir=asc":
			if seen[0] != "alpha" || seen[len(seen)-1] != "hotel" {
				t.Errorf("status, name asc: %v", seen)
			}
		}
	}
	// A marker need not match the filters; an unknown one is a 400.
	after := namesOf("?sort=name:asc&container_format=bare&marker=" + ids["echo"])
	if !slices.Equal(after, []string{"foxtrot", "golf"}) {
		t.Errorf("after echo: %v", after)
	}
	if res := tc.do("GET", "/image/v2/images?marker="+tc.create(tc.alt, map[string]any{"visibility": "private"})["id"].(string), tc.demo, nil); res.StatusCode != 400 {
		t.Errorf("another project's private marker: %d", res.StatusCode)
	}
	if got := namesOf("?limit=0"); len(got) != 0 {
		t.Errorf("limit=0: %v", got)
	}

	now := time.Now().UTC()
	filters := []struct {
		query string
		want  []string
	}{
		{"?name=alpha", []string{"alpha"}},
		{"?name=in:alpha,golf,nope", []string{"alpha", "golf"}},
		{"?id=in:" + ids["bravo"] + "," + ids["delta"], []string{"bravo", "delta"}},
		{"?status=queued", []string{"hotel"}},
		{"?status=in:queued,saving", []string{"hotel"}},
		{"?container_format=ova", []string{"echo"}},
		{"?disk_format=raw&container_format=bare&size_max=300", []string{"alpha", "delta"}},
		{"?size_min=600&size_max=700", []string{"foxtrot", "golf"}},
		{"?tag=three", []string{"charlie", "delta", "golf"}},
		{"?protected=true", []string{"echo"}},
		{"?os_distro=d1", []string{"alpha", "charlie", "foxtrot"}},
		{"?owner=" + tc.demoProject + "&name=golf", []string{"golf"}},
		{"?created_at=gte:" + now.Add(-time.Hour).Format(time.RFC3339) + "&name=golf", []string{"golf"}},
		{"?created_at=lt:" + now.Add(-time.Hour).Format(time.RFC3339), nil},
		{"?updated_at=lte:" + now.Add(time.Hour).Format(time.RFC3339) + "&name=alpha", []string{"alpha"}},
		{"?visibility=shared&name=bravo", []string{"bravo"}},
	}
	for _, f := range filters {
		got := namesOf(f.query + "&limit=100")
		slices.Sort(got)
		if !slices.Equal(got, f.want) {
			t.Errorf("%s: %v, want %v", f.query, got, f.want)
		}
	}
	// Names with commas need quotes inside in:.
	tc.create(tc.demo, map[string]any{"name": "glass, darkly"})
	if got := tc.listIDs(tc.demo, "?name=in:"+url.QueryEscape(`"glass, darkly",alpha`)); len(got) != 2 {
		t.Errorf("quoted in: %v", got)
	}
}

// TestPagingWithNulls pages one image at a time through orders on columns
// that are NULL for some images, in both directions.
func TestPagingWithNulls(t *testing.T) {
	tc := newTestCloud(t, Config{})
	for i, body := range []map[string]any{{}, {"name": "b"}, {}, {"name": "a", "disk_format": "raw"}, {"name": "b", "disk_format": "iso"}} {
		id := tc.create(tc.demo, body)["id"].(string)
		if i%2 == 0 {
			tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/tags/t", tc.demo, nil))
		}
	}
	for _, sort := range []string{"sort=name:asc", "sort=name:desc", "sort=disk_format:asc,name:desc", "sort=size:asc,name:asc",
		"sort_key=disk_format&sort_key=name&sort_dir=desc&sort_dir=asc"} {
		whole := tc.listIDs(tc.demo, "?limit=100&"+sort)
		var paged []string
		path := "/image/v2/images?limit=1&" + sort
		for len(paged) <= len(whole) && path != "" {
			res := tc.must(200, tc.do("GET", path, tc.demo, nil)).JSON(t)
			for _, im := range res["images"].([]any) {
				paged = append(paged, im.(map[string]any)["id"].(string))
			}
			path = ""
			if next, ok := res["next"].(string); ok {
				path = "/image" + next
			}
		}
		if len(whole) != 5 || !slices.Equal(paged, whole) {
			t.Errorf("%s: paged %v, whole %v", sort, paged, whole)
		}
	}
}
