package compute

import (
	"context"
	"testing"
	"time"
)

// TestPurgeDeleted: servers deleted before the cutoff lose their rows and
// actions; one deleted after it and one alive keep theirs.
func TestPurgeDeleted(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	old := tc.createServer(t, tc.demo, "old", "1", nil)
	recent := tc.createServer(t, tc.demo, "recent", "1", nil)
	alive := tc.createServer(t, tc.demo, "alive", "1", nil)
	for _, id := range []string{old, recent, alive} {
		tc.waitStatus(t, tc.demo, id, "ACTIVE")
	}
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/servers/"+old, tc.demo, nil))
	tc.waitStatus(t, tc.demo, old, "DELETED")
	time.Sleep(5 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(5 * time.Millisecond)
	tc.must(t, 204, tc.do(t, "DELETE", "/compute/v2.1/servers/"+recent, tc.demo, nil))
	tc.waitStatus(t, tc.demo, recent, "DELETED")

	count := func(table, id string) int {
		var n int
		if err := tc.db.QueryRow(`SELECT count(*) FROM `+table+` WHERE `+map[string]string{
			"compute_servers": "id", "compute_instance_actions": "server_id"}[table]+`=?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count("compute_servers", old) != 1 || count("compute_instance_actions", old) == 0 {
		t.Fatal("a deleted server's row and actions are not kept before the purge")
	}
	n, err := tc.svc.PurgeDeleted(ctx, cutoff)
	if err != nil || n != 1 {
		t.Fatalf("PurgeDeleted = %d, %v; want 1", n, err)
	}
	if count("compute_servers", old) != 0 || count("compute_instance_actions", old) != 0 {
		t.Error("the old deleted server is kept")
	}
	for _, id := range []string{recent, alive} {
		if count("compute_servers", id) != 1 || count("compute_instance_actions", id) == 0 {
			t.Errorf("server %s lost its row or actions", id)
		}
	}
	// The deleted one is still listed as deleted, as Nova lists them.
	res := tc.must(t, 200, tc.do(t, "GET", "/compute/v2.1/servers/detail?deleted=true&all_tenants=1", tc.admin, nil)).JSON(t)
	var ids []string
	for _, s := range res["servers"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	if len(ids) != 1 || ids[0] != recent {
		t.Errorf("deleted servers listed: %v, want only %s", ids, recent)
	}
}
