package container

import (
	"slices"
	"testing"
)

// TestSecurityGroups: add_security_group and remove_security_group (up to
// 1.14) put the group on every port of the container or take it off; the
// errors are Zun's; from 1.15 the API is not there (406).
func TestSecurityGroups(t *testing.T) {
	tc := newTestCloud(t)
	id := tc.runSleeper(t, "guarded")
	path := "/v1/containers/" + id
	groups := func() []string {
		t.Helper()
		ports := tc.nets.portsOf(id)
		if len(ports) != 1 {
			t.Fatalf("ports %+v", ports)
		}
		return ports[0].groups
	}
	zunError(t, tc.doV(t, "container 1.40", "POST", path+"/add_security_group", tc.Demo, map[string]any{"name": "web"}), 406, "", "")
	must(t, 202, tc.doV(t, "container 1.14", "POST", path+"/add_security_group", tc.Demo, map[string]any{"name": "web"}))
	if g := groups(); !slices.Equal(g, []string{"sg-default", "sg-web"}) {
		t.Errorf("the port's groups after add: %v", g)
	}
	if ct := tc.show(t, tc.Demo, id); !slices.Equal(toStrings(ct["security_groups"]), []string{"sg-default", "sg-web"}) {
		t.Errorf("the container's groups: %v", ct["security_groups"])
	}
	zunError(t, tc.doV(t, "container 1.14", "POST", path+"/add_security_group", tc.Demo, map[string]any{"name": "web"}), 400, "container.invalid-value",
		"Security group sg-web has been added to container.")
	zunError(t, tc.doV(t, "container 1.14", "POST", path+"/add_security_group", tc.Demo, map[string]any{"name": "nosuch"}), 400, "container.invalid-value", "")
	zunError(t, tc.doV(t, "container 1.14", "POST", path+"/add_security_group", tc.Demo, map[string]any{}), 400, "container.schema-validation-error", "")
	must(t, 202, tc.doV(t, "container 1.14", "POST", path+"/remove_security_group?name=default", tc.Demo, nil)) // as zunclient sends it
	if g := groups(); !slices.Equal(g, []string{"sg-web"}) {
		t.Errorf("the port's groups after remove: %v", g)
	}
	zunError(t, tc.doV(t, "container 1.14", "POST", path+"/remove_security_group", tc.Demo, map[string]any{"name": "default"}), 400, "container.invalid-value",
		"Security group sg-default was not added to container.")
	zunError(t, tc.doV(t, "container 1.14", "POST", "/v1/containers/nosuch/add_security_group", tc.Demo, map[string]any{"name": "web"}),
		404, "container.container-not-found", "")
	acts := must(t, 200, tc.do(t, "GET", path+"/container_actions", tc.Demo, nil)).JSON(t)["containerActions"].([]any)
	if a := acts[0].(map[string]any); a["action"] != "remove_security_group" {
		t.Errorf("last action %v", a)
	}
	tc.remove(t, tc.Demo, id)
}
