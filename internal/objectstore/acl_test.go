package objectstore

import (
	"testing"
)

func TestContainerACLs(t *testing.T) {
	tc := newTestCloud(t)
	bob, bobProject, bobUser := tc.newUser("bob", "member")
	eve, _, _ := tc.newUser("eve", "member")
	auditor, _, _ := tc.newUser("rachel", "auditor")

	tc.mkContainer("private")
	tc.put("private", "o", "private")
	tc.mkContainer("shared", "X-Container-Read", bobProject+":"+bobUser, "X-Container-Write", bobProject+":*")
	tc.put("shared", "o", "shared")
	tc.mkContainer("byname", "X-Container-Read", "bob:bob")
	tc.put("byname", "o", "by name")
	tc.mkContainer("byrole", "X-Container-Read", "auditor")
	tc.put("byrole", "o", "by role")
	tc.mkContainer("byproject", "X-Container-Read", bobProject)
	tc.put("byproject", "o", "by project")
	tc.mkContainer("public", "X-Container-Read", ".r:*")
	tc.put("public", "o", "public")
	tc.mkContainer("listed", "X-Container-Read", ".r:*,.rlistings")
	tc.put("listed", "o", "listed")
	tc.mkContainer("refer", "X-Container-Read", ".r:.example.com,.r:-bad.example.com")
	tc.put("refer", "o", "referred")

	cases := []struct {
		name, method, path, token string
		headers                   []string
		status                    int
	}{
		{"other project: private object", "GET", tc.demoPath("private", "o"), bob, nil, 403},
		{"other project: private listing", "GET", tc.demoPath("private"), bob, nil, 403},
		{"anonymous: private object", "GET", tc.demoPath("private", "o"), "", nil, 401},
		{"anonymous: missing container", "GET", tc.demoPath("nothere", "o"), "", nil, 401},
		{"other project: missing container", "GET", tc.demoPath("nothere", "o"), bob, nil, 403},
		{"read ACL project:user: object", "GET", tc.demoPath("shared", "o"), bob, nil, 200},
		{"read ACL project:user: listing", "GET", tc.demoPath("shared"), bob, nil, 200},
		{"read ACL project:user: HEAD container", "HEAD", tc.demoPath("shared"), bob, nil, 204},
		{"read ACL: not another user", "GET", tc.demoPath("shared", "o"), eve, nil, 403},
		{"write ACL: PUT", "PUT", tc.demoPath("shared", "new"), bob, nil, 201},
		{"write ACL: POST", "POST", tc.demoPath("shared", "new"), bob, nil, 202},
		{"write ACL: DELETE", "DELETE", tc.demoPath("shared", "new"), bob, nil, 204},
		{"write ACL: not container metadata", "POST", tc.demoPath("shared"), bob, []string{"X-Container-Read", ".r:*"}, 403},
		{"write ACL: not container delete", "DELETE", tc.demoPath("shared"), bob, nil, 403},
		{"write ACL: not another container", "PUT", tc.demoPath("private", "x"), bob, nil, 403},
		{"no write ACL: PUT", "PUT", tc.demoPath("byname", "x"), bob, nil, 403},
		{"read ACL by names", "GET", tc.demoPath("byname", "o"), bob, nil, 200},
		{"read ACL by role", "GET", tc.demoPath("byrole", "o"), auditor, nil, 200},
		{"read ACL by role: not others", "GET", tc.demoPath("byrole", "o"), eve, nil, 403},
		{"read ACL by project id", "GET", tc.demoPath("byproject", "o"), bob, nil, 200},
		{"public: anonymous object", "GET", tc.demoPath("public", "o"), "", nil, 200},
		{"public: anonymous HEAD", "HEAD", tc.demoPath("public", "o"), "", nil, 200},
		{"public: other project object", "GET", tc.demoPath("public", "o"), eve, nil, 200},
		{"public: no listing without .rlistings", "GET", tc.demoPath("public"), "", nil, 401},
		{"public: no listing for others either", "GET", tc.demoPath("public"), eve, nil, 403},
		{"public: anonymous write refused", "PUT", tc.demoPath("public", "w"), "", nil, 401},
		{"public: missing object", "GET", tc.demoPath("public", "none"), "", nil, 404},
		{"rlistings: anonymous listing", "GET", tc.demoPath("listed"), "", nil, 200},
		{"rlistings: anonymous HEAD", "HEAD", tc.demoPath("listed"), "", nil, 204},
		{"referrer allowed", "GET", tc.demoPath("refer", "o"), "", []string{"Referer", "http://www.example.com/page"}, 200},
		{"referrer denied", "GET", tc.demoPath("refer", "o"), "", []string{"Referer", "http://bad.example.com/"}, 401},
		{"no referrer", "GET", tc.demoPath("refer", "o"), "", nil, 401},
		{"owner reads private", "GET", tc.demoPath("private", "o"), tc.demo, nil, 200},
		{"cloud admin reads private", "GET", tc.demoPath("private", "o"), tc.admin, nil, 200},
	}
	for _, c := range cases {
		var body any
		if c.method == "PUT" {
			body = "x"
		}
		res := tc.do(c.method, c.path, c.token, body, c.headers...)
		if res.StatusCode != c.status {
			t.Errorf("%s: %s %s: %d, want %d: %s", c.name, c.method, c.path, res.StatusCode, c.status, res.Body)
		}
	}
	// Only owners see a container's ACLs.
	if res := tc.must(204, tc.do("HEAD", tc.demoPath("shared"), tc.demo, nil)); res.Header.Get("X-Container-Read") == "" {
		t.Error("owner does not see the read ACL")
	}
	if res := tc.must(204, tc.do("HEAD", tc.demoPath("shared"), bob, nil)); res.Header.Get("X-Container-Read") != "" || res.Header.Get("X-Container-Write") != "" {
		t.Errorf("ACL shown to a non-owner: %v", res.Header)
	}
	// Removing the ACL takes effect at once.
	tc.must(204, tc.do("POST", tc.demoPath("shared"), tc.demo, nil, "X-Remove-Container-Read", "x"))
	tc.must(403, tc.do("GET", tc.demoPath("shared", "o"), bob, nil))
	tc.must(204, tc.do("POST", tc.demoPath("public"), tc.demo, nil, "X-Container-Read", ""))
	tc.must(401, tc.do("GET", tc.demoPath("public", "o"), "", nil))
}
