package volume

import (
	"bytes"
	"slices"
	"testing"

	"github.com/monostack/monostack/internal/testcloud"
)

// createSnapshot creates a snapshot (202, creating) and returns its id.
func (tc *testCloud) createSnapshot(t testing.TB, token string, snap map[string]any) string {
	t.Helper()
	res := tc.must(t, 202, "POST", "/snapshots", token, map[string]any{"snapshot": snap})
	s := res.JSON(t)["snapshot"].(map[string]any)
	if s["status"] != "creating" {
		t.Fatalf("new snapshot has status %v", s["status"])
	}
	return s["id"].(string)
}

func TestSnapshotLifecycle(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	sid := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol, "name": "snap", "description": "first",
		"metadata": map[string]any{"k": "v"}})
	s := tc.waitSnapshot(t, tc.demo, sid, "available")
	want := map[string]any{"id": sid, "volume_id": vol, "name": "snap", "description": "first", "size": 1.0,
		"os-extended-snapshot-attributes:project_id": tc.demoProject, "os-extended-snapshot-attributes:progress": "100%"}
	for k, w := range want {
		if s[k] != w {
			t.Errorf("%s = %#v, want %#v", k, s[k], w)
		}
	}
	if m := s["metadata"].(map[string]any); len(m) != 1 || m["k"] != "v" {
		t.Errorf("metadata %v", m)
	}
	if got := tc.blockSize(t, "snapshot-"+sid); got != GiB {
		t.Errorf("block snapshot-%s has %d bytes", sid, got)
	}
	s = tc.must(t, 200, "GET", "/snapshots/"+sid, tc.demo, nil, "OpenStack-API-Version", "volume 3.41").JSON(t)["snapshot"].(map[string]any)
	if s["user_id"] != tc.creds(t, tc.demo).UserID {
		t.Errorf("3.41 user_id %v", s["user_id"])
	}

	// Lists, with filters.
	other := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol, "name": "second"})
	tc.waitSnapshot(t, tc.demo, other, "available")
	if got := ids(tc.list(t, "/snapshots", tc.demo, "snapshots")); !slices.Equal(got, []string{other, sid}) {
		t.Errorf("list %v, want newest first %v", got, []string{other, sid})
	}
	l := tc.list(t, "/snapshots/detail?name=snap", tc.demo, "snapshots")
	if len(l) != 1 || l[0]["id"] != sid || l[0]["metadata"].(map[string]any)["k"] != "v" {
		t.Errorf("detail by name %v", l)
	}
	if l := tc.list(t, "/snapshots?volume_id="+vol, tc.demo, "snapshots"); len(l) != 2 {
		t.Errorf("by volume_id: %d", len(l))
	}
	if l := tc.list(t, "/snapshots?volume_id="+newUUID(), tc.demo, "snapshots"); len(l) != 0 {
		t.Errorf("by another volume_id: %d", len(l))
	}
	res := tc.must(t, 200, "GET", "/snapshots?limit=1", tc.demo, nil).JSON(t)
	if len(res["snapshots"].([]any)) != 1 || res["snapshots_links"] == nil {
		t.Errorf("limit=1: %v", res)
	}
	if l := tc.list(t, "/snapshots?sort=name:asc", tc.demo, "snapshots"); len(l) != 2 || l[0]["name"] != "second" {
		t.Errorf("sort by name %v", l)
	}
	fault(t, tc.do(t, "GET", "/snapshots?marker="+newUUID(), tc.demo, nil), 400, "badRequest")
	if l := tc.list(t, "/snapshots", tc.admin, "snapshots"); len(l) != 0 {
		t.Errorf("admin's own project lists %d snapshots", len(l))
	}
	if l := tc.list(t, "/snapshots?all_tenants=1", tc.admin, "snapshots"); len(l) != 2 {
		t.Errorf("admin all_tenants lists %d snapshots", len(l))
	}

	// Update.
	s = tc.must(t, 200, "PUT", "/snapshots/"+sid, tc.demo, map[string]any{"snapshot": map[string]any{"name": "renamed", "description": "d"}}).JSON(t)["snapshot"].(map[string]any)
	if s["name"] != "renamed" || s["description"] != "d" {
		t.Errorf("update answered %v", s)
	}
	if s := tc.waitSnapshot(t, tc.demo, sid, "available"); s["name"] != "renamed" || s["description"] != "d" {
		t.Errorf("after update %v", s)
	}
	fault(t, tc.do(t, "PUT", "/snapshots/"+sid, tc.demo, map[string]any{"name": "x"}), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/snapshots/"+newUUID(), tc.demo, map[string]any{"snapshot": map[string]any{"name": "x"}}), 404, "itemNotFound")

	// Another project sees none of it.
	alt := tc.addMember(t, "alt")
	fault(t, tc.do(t, "GET", "/snapshots/"+sid, alt, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "PUT", "/snapshots/"+sid, alt, map[string]any{"snapshot": map[string]any{"name": "mine"}}), 404, "itemNotFound")
	fault(t, tc.do(t, "DELETE", "/snapshots/"+sid, alt, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "POST", "/volumes", alt, map[string]any{"volume": map[string]any{"snapshot_id": sid}}), 404, "itemNotFound")
	if l := tc.list(t, "/snapshots", alt, "snapshots"); len(l) != 0 {
		t.Errorf("another project lists %d snapshots", len(l))
	}

	// Delete.
	tc.must(t, 202, "DELETE", "/snapshots/"+sid, tc.demo, nil)
	tc.waitSnapshot(t, tc.demo, sid, "deleted")
	if got := tc.blockSize(t, "snapshot-"+sid); got >= 0 {
		t.Errorf("snapshot block left after delete")
	}
	fault(t, tc.do(t, "DELETE", "/snapshots/"+sid, tc.demo, nil), 404, "itemNotFound")
	if n := tc.rows(t, "volume_snapshot_metadata"); n != 0 {
		t.Errorf("%d snapshot metadata rows left", n)
	}
}

func TestSnapshotBadInput(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	for _, tt := range []struct {
		name   string
		body   any
		status int
	}{
		{"missing snapshot", map[string]any{"volume_id": vol}, 400},
		{"no volume_id", map[string]any{"snapshot": map[string]any{"name": "x"}}, 400},
		{"volume_id a number", map[string]any{"snapshot": map[string]any{"volume_id": 5}}, 400},
		{"unknown volume", map[string]any{"snapshot": map[string]any{"volume_id": newUUID()}}, 404},
		{"force maybe", map[string]any{"snapshot": map[string]any{"volume_id": vol, "force": "maybe"}}, 400},
		{"metadata a number", map[string]any{"snapshot": map[string]any{"volume_id": vol, "metadata": map[string]any{"a": 1}}}, 400},
		{"metadata empty key", map[string]any{"snapshot": map[string]any{"volume_id": vol, "metadata": map[string]any{"": "a"}}}, 400},
		{"malformed", `{"snapshot": {"volume_id": "` + vol + `"`, 400},
	} {
		res := tc.do(t, "POST", "/snapshots", tc.demo, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
		}
	}
	// A volume in error cannot be snapshotted.
	testcloud.Must(t, 202, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}}))
	fault(t, tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol, "force": true}}), 400, "badRequest")
	if n := tc.rows(t, "volume_snapshots"); n != 0 {
		t.Errorf("refused snapshots left %d rows", n)
	}
	if b := tc.blockIDs(t); !slices.Equal(b, []string{"volume-" + vol}) {
		t.Errorf("blocks %v", b)
	}

	// The snapshots quota.
	testcloud.Must(t, 202, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "available"}}))
	tc.must(t, 200, "PUT", "/os-quota-sets/"+tc.demoProject, tc.admin, map[string]any{"quota_set": map[string]any{"snapshots": 1}})
	sid := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol})
	fault(t, tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol}}), 413, "overLimit")
	tc.waitSnapshot(t, tc.demo, sid, "available")
	if n := tc.rows(t, "volume_snapshots"); n != 1 {
		t.Errorf("%d snapshots, want 1", n)
	}

	// Snapshot actions: the admin's.
	act := func(token string, body any) response {
		return tc.do(t, "POST", "/snapshots/"+sid+"/action", token, body)
	}
	fault(t, act(tc.demo, map[string]any{"os-reset_status": map[string]any{"status": "error"}}), 403, "forbidden")
	fault(t, act(tc.demo, map[string]any{"os-force_delete": map[string]any{}}), 403, "forbidden")
	fault(t, act(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "bogus"}}), 400, "badRequest")
	fault(t, act(tc.admin, map[string]any{"os-fly": map[string]any{}}), 400, "badRequest")
	tc.waitSnapshot(t, tc.demo, sid, "available")
	testcloud.Must(t, 202, act(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "error_deleting"}}))
	tc.waitSnapshot(t, tc.demo, sid, "error_deleting")
	fault(t, tc.do(t, "DELETE", "/snapshots/"+sid, tc.demo, nil), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"snapshot_id": sid}}), 400, "badRequest")
	testcloud.Must(t, 202, act(tc.admin, map[string]any{"os-force_delete": map[string]any{}}))
	tc.waitSnapshot(t, tc.demo, sid, "deleted")
	if b := tc.blockIDs(t); !slices.Equal(b, []string{"volume-" + vol}) {
		t.Errorf("blocks after force delete %v", b)
	}
}

func TestSnapshotOfInUseVolume(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	ctx := t.Context()
	conn, err := tc.svc.Reserve(ctx, tc.creds(t, tc.demo), vol, newUUID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.svc.Attached(ctx, conn.AttachmentID, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "in-use")
	fault(t, tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol}}), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol, "force": false}}), 400, "badRequest")
	if n := tc.rows(t, "volume_snapshots"); n != 0 {
		t.Fatalf("refused snapshots left %d rows", n)
	}
	a := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol, "force": true})
	b := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol, "force": "True"})
	tc.waitSnapshot(t, tc.demo, a, "available")
	tc.waitSnapshot(t, tc.demo, b, "available")
	if v := tc.waitVolume(t, tc.demo, vol, "in-use"); len(v["attachments"].([]any)) != 1 {
		t.Errorf("the snapshots changed the attachments: %v", v["attachments"])
	}
	// An attached volume is not deleted, even with its snapshots.
	fault(t, tc.do(t, "DELETE", "/volumes/"+vol+"?cascade=true", tc.demo, nil), 400, "badRequest")
	if n := tc.rows(t, "volume_snapshots"); n != 2 {
		t.Errorf("%d snapshots, want 2", n)
	}
}

// pattern is 64 KiB of recognisable bytes.
func pattern(seed byte) []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func TestVolumeFromSnapshotAndClone(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	src := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "name": "src"})
	tc.waitVolume(t, tc.demo, src, "available")
	original, changed := pattern(1), pattern(100)
	const off = 300 << 20 // somewhere in the middle
	tc.writeBlock(t, "volume-"+src, off, original)

	sid := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": src})
	tc.waitSnapshot(t, tc.demo, sid, "available")
	// The source changes after the snapshot; the snapshot does not.
	tc.writeBlock(t, "volume-"+src, off, changed)

	// From the snapshot: its size by default, larger if asked.
	fromSnap := tc.createVolume(t, tc.demo, map[string]any{"snapshot_id": sid})
	bigger := tc.createVolume(t, tc.demo, map[string]any{"snapshot_id": sid, "size": 2})
	v := tc.waitVolume(t, tc.demo, fromSnap, "available")
	if v["size"] != 1.0 || v["snapshot_id"] != sid || v["volume_type"] != DefaultTypeName {
		t.Errorf("volume from snapshot %v", v)
	}
	if l := tc.list(t, "/volumes?snapshot_id="+sid, tc.demo, "volumes"); len(l) != 2 {
		t.Errorf("snapshot_id filter lists %d", len(l))
	}
	tc.waitVolume(t, tc.demo, bigger, "available")
	if got := tc.blockSize(t, "volume-"+bigger); got != 2*GiB {
		t.Errorf("larger volume from snapshot has %d bytes", got)
	}
	for _, id := range []string{fromSnap, bigger} {
		if got := tc.readBlock(t, "volume-"+id, off, len(original)); !bytes.Equal(got, original) {
			t.Errorf("volume %s from the snapshot does not hold the snapshot's bytes", id)
		}
	}
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"snapshot_id": sid, "size": 0}}), 400, "badRequest")

	// Independent: writing the copy changes neither the snapshot nor the
	// source.
	tc.writeBlock(t, "volume-"+fromSnap, off, pattern(200))
	if got := tc.readBlock(t, "snapshot-"+sid, off, len(original)); !bytes.Equal(got, original) {
		t.Errorf("writing a volume made from a snapshot changed the snapshot")
	}
	if got := tc.readBlock(t, "volume-"+src, off, len(changed)); !bytes.Equal(got, changed) {
		t.Errorf("writing a volume made from a snapshot changed the source")
	}
	if got := tc.readBlock(t, "volume-"+bigger, off, len(original)); !bytes.Equal(got, original) {
		t.Errorf("writing one volume made from a snapshot changed another")
	}

	// A clone of the source: the source's bytes as they are now.
	clone := tc.createVolume(t, tc.demo, map[string]any{"source_volid": src, "name": "clone"})
	v = tc.waitVolume(t, tc.demo, clone, "available")
	if v["source_volid"] != src || v["size"] != 1.0 {
		t.Errorf("clone %v", v)
	}
	if got := tc.readBlock(t, "volume-"+clone, off, len(changed)); !bytes.Equal(got, changed) {
		t.Errorf("the clone does not hold the source's bytes")
	}
	tc.writeBlock(t, "volume-"+src, off, original)
	if got := tc.readBlock(t, "volume-"+clone, off, len(changed)); !bytes.Equal(got, changed) {
		t.Errorf("writing the source changed the clone")
	}
	tc.writeBlock(t, "volume-"+clone, 0, []byte("clone"))
	if got := tc.readBlock(t, "volume-"+src, 0, 5); bytes.Equal(got, []byte("clone")) {
		t.Errorf("writing the clone changed the source")
	}
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"source_volid": src, "size": 0}}), 400, "badRequest")
	if n := tc.rows(t, "volume_volumes"); n != 4 {
		t.Errorf("%d volumes, want 4", n)
	}
}

func TestDeleteVolumeWithSnapshots(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	s1 := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol})
	s2 := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": vol})
	tc.waitSnapshot(t, tc.demo, s1, "available")
	tc.waitSnapshot(t, tc.demo, s2, "available")
	keep := tc.newVolume(t, tc.demo, 1)

	fault(t, tc.do(t, "DELETE", "/volumes/"+vol, tc.demo, nil), 400, "badRequest")
	fault(t, tc.do(t, "DELETE", "/volumes/"+vol+"?cascade=false", tc.demo, nil), 400, "badRequest")
	tc.waitVolume(t, tc.demo, vol, "available")
	tc.waitSnapshot(t, tc.demo, s1, "available")

	// A snapshot a volume is being made from stays (a volume stuck
	// creating, as a row with no work left says).
	making := tc.createVolume(t, tc.demo, map[string]any{"snapshot_id": s1})
	tc.waitVolume(t, tc.demo, making, "available")
	tc.exec(t, `UPDATE volume_volumes SET status='creating' WHERE id=?`, making)
	fault(t, tc.do(t, "DELETE", "/snapshots/"+s1, tc.demo, nil), 400, "badRequest")
	tc.waitSnapshot(t, tc.demo, s1, "available")
	fault(t, tc.do(t, "DELETE", "/volumes/"+making, tc.demo, nil), 400, "badRequest")
	tc.must(t, 202, "DELETE", "/volumes/"+making+"?force=true", tc.admin, nil)
	tc.waitVolume(t, tc.demo, making, "deleted")

	tc.must(t, 202, "DELETE", "/volumes/"+vol+"?cascade=true", tc.demo, nil)
	tc.waitVolume(t, tc.demo, vol, "deleted")
	tc.waitSnapshot(t, tc.demo, s1, "deleted")
	tc.waitSnapshot(t, tc.demo, s2, "deleted")
	if b := tc.blockIDs(t); !slices.Equal(b, []string{"volume-" + keep}) {
		t.Errorf("blocks after cascade delete %v, want only volume-%s", b, keep)
	}
	if n := tc.rows(t, "volume_snapshots"); n != 0 {
		t.Errorf("%d snapshot rows left", n)
	}
}
