package image

import (
	"strings"
	"testing"
)

func TestMembers(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.create(tc.demo, map[string]any{"visibility": "shared"})["id"].(string)
	private := tc.create(tc.demo, map[string]any{"visibility": "private"})["id"].(string)
	base := "/image/v2/images/" + id + "/members"

	m := tc.must(200, tc.do("POST", base, tc.demo, map[string]any{"member": tc.altPr})).JSON(t)
	if m["member_id"] != tc.altPr || m["image_id"] != id || m["status"] != "pending" || m["schema"] != "/v2/schemas/member" {
		t.Fatalf("member %v", m)
	}
	tc.must(200, tc.do("POST", base, tc.demo, map[string]any{"member": "some-other-project"}))
	list := tc.must(200, tc.do("GET", base, tc.demo, nil)).JSON(t)
	if len(list["members"].([]any)) != 2 || list["schema"] != "/v2/schemas/members" {
		t.Errorf("owner's member list %v", list)
	}
	// A member sees only itself.
	list = tc.must(200, tc.do("GET", base, tc.alt, nil)).JSON(t)
	if ms := list["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["member_id"] != tc.altPr {
		t.Errorf("member's list %v", list)
	}
	tc.must(200, tc.do("GET", base+"/"+tc.altPr, tc.alt, nil))
	tc.must(404, tc.do("GET", base+"/some-other-project", tc.alt, nil))
	tc.must(200, tc.do("GET", base+"/some-other-project", tc.demo, nil))

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		msg    string
	}{
		{"duplicate", "POST", base, tc.demo, map[string]any{"member": tc.altPr}, 409, "duplicated"},
		{"no member", "POST", base, tc.demo, map[string]any{}, 400, "not specified"},
		{"empty member", "POST", base, tc.demo, map[string]any{"member": ""}, 400, "empty"},
		{"member not a string", "POST", base, tc.demo, map[string]any{"member": 5}, 400, "member"},
		{"malformed", "POST", base, tc.demo, `{"member":`, 400, ""},
		{"member adds members", "POST", base, tc.alt, map[string]any{"member": "x"}, 403, "Not allowed"},
		{"private image", "POST", "/image/v2/images/" + private + "/members", tc.demo, map[string]any{"member": "x"}, 403, "Only shared"},
		{"private image list", "GET", "/image/v2/images/" + private + "/members", tc.demo, nil, 403, "Only shared"},
		{"private image show", "GET", "/image/v2/images/" + private + "/members/x", tc.demo, nil, 404, ""},
		{"unknown image", "GET", "/image/v2/images/nope/members", tc.demo, nil, 404, ""},
		{"owner accepts for member", "PUT", base + "/" + tc.altPr, tc.demo, map[string]any{"status": "accepted"}, 403, "Not allowed"},
		{"bad status", "PUT", base + "/" + tc.altPr, tc.alt, map[string]any{"status": "maybe"}, 400, "Status"},
		{"no status", "PUT", base + "/" + tc.altPr, tc.alt, map[string]any{}, 400, "Status not specified"},
		{"member deletes itself", "DELETE", base + "/" + tc.altPr, tc.alt, nil, 403, "Not allowed"},
		{"delete unknown member", "DELETE", base + "/nobody", tc.demo, nil, 404, ""},
		{"show unknown member", "GET", base + "/nobody", tc.demo, nil, 404, ""},
		{"reader adds", "POST", base, tc.reader, map[string]any{"member": "x"}, 403, ""},
	}
	for _, c := range cases {
		res := tc.do(c.method, c.path, c.token, c.body)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		if msg := faultMessage(t, res); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q does not mention %q", c.name, msg, c.msg)
		}
	}
	for _, st := range []string{"accepted", "rejected", "pending", "accepted"} {
		m := tc.must(200, tc.do("PUT", base+"/"+tc.altPr, tc.alt, map[string]any{"status": st})).JSON(t)
		if m["status"] != st {
			t.Errorf("status %v, want %s", m["status"], st)
		}
	}
	// An admin may answer for a member.
	tc.must(200, tc.do("PUT", base+"/some-other-project", tc.admin, map[string]any{"status": "rejected"}))
	tc.must(204, tc.do("DELETE", base+"/"+tc.altPr, tc.demo, nil))
	tc.must(404, tc.do("GET", "/image/v2/images/"+id, tc.alt, nil))
	tc.must(404, tc.do("GET", base, tc.alt, nil))
}
