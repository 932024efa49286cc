package identity

import "testing"

func TestBootstrapAndTokens(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(200, tc.do("GET", "/identity/v3/auth/tokens", tc.admin, nil, "X-Subject-Token", tc.demo))
	tok := res.JSON(t)["token"].(map[string]any)
	if tok["project"].(map[string]any)["name"] != "demo" {
		t.Fatalf("demo token scoped to %v", tok["project"])
	}
	// A member cannot list users; an admin can.
	tc.must(403, tc.do("GET", "/identity/v3/users", tc.demo, nil))
	tc.must(200, tc.do("GET", "/identity/v3/users", tc.admin, nil))
}
