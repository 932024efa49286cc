package volume

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

// exec runs SQL on the cloud's database, as a previous run left it.
func (tc *testCloud) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := tc.DB.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

func TestRestartFinishesWork(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	ctx := context.Background()
	kept := tc.newVolume(t, tc.demo, 1)
	tc.writeBlock(t, "volume-"+kept, 4096, []byte("acknowledged"))
	creating := tc.newVolume(t, tc.demo, 2)
	src := tc.newVolume(t, tc.demo, 1)
	tc.writeBlock(t, "volume-"+src, 0, []byte("snapshot bytes"))
	snap := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": src})
	tc.waitSnapshot(t, tc.demo, snap, "available")
	fromSnap := tc.createVolume(t, tc.demo, map[string]any{"snapshot_id": snap})
	tc.waitVolume(t, tc.demo, fromSnap, "available")
	deleting := tc.newVolume(t, tc.demo, 1)
	extending := tc.newVolume(t, tc.demo, 1)
	tc.writeBlock(t, "volume-"+extending, 0, []byte("grow me"))
	snapCreating := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": kept})
	tc.waitSnapshot(t, tc.demo, snapCreating, "available")
	snapDeleting := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": kept})
	tc.waitSnapshot(t, tc.demo, snapDeleting, "available")
	cascade := tc.newVolume(t, tc.demo, 1)
	cascadeSnap := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": cascade})
	tc.waitSnapshot(t, tc.demo, cascadeSnap, "available")

	// What a kill -9 in the middle of each piece of work leaves.
	tc.svc.Close()
	tc.exec(t, `UPDATE volume_volumes SET status='creating', task='create' WHERE id IN (?, ?)`, creating, fromSnap)
	for _, id := range []string{creating, fromSnap} {
		if err := tc.blocks.Delete(ctx, "volume-"+id); err != nil {
			t.Fatal(err)
		}
	}
	tc.exec(t, `UPDATE volume_volumes SET status='deleting', task='delete' WHERE id=?`, deleting)
	tc.exec(t, `UPDATE volume_volumes SET status='extending', task='extend', new_size=3, prev_status='available' WHERE id=?`, extending)
	tc.exec(t, `UPDATE volume_snapshots SET status='creating', task='create' WHERE id=?`, snapCreating)
	if err := tc.blocks.Delete(ctx, "snapshot-"+snapCreating); err != nil {
		t.Fatal(err)
	}
	tc.exec(t, `UPDATE volume_snapshots SET status='deleting', task='delete' WHERE id=?`, snapDeleting)
	tc.exec(t, `UPDATE volume_volumes SET status='deleting', task='delete' WHERE id=?`, cascade)
	tc.exec(t, `UPDATE volume_snapshots SET status='deleting', task='delete' WHERE volume_id=?`, cascade)
	// Bytes no record owns: a create that died before its row, a delete
	// whose row went first. Blocks not named by this service are not its.
	orphanVol, orphanSnap := "volume-"+newUUID(), "snapshot-"+newUUID()
	for _, id := range []string{orphanVol, orphanSnap, "image-cache-1"} {
		if err := tc.blocks.Create(ctx, id, GiB); err != nil {
			t.Fatal(err)
		}
	}

	tc.start(t)
	if v := tc.waitVolume(t, tc.demo, creating, "available"); v["size"] != 2.0 {
		t.Errorf("resumed create: %v", v)
	}
	if got := tc.blockSize(t, "volume-"+creating); got != 2*GiB {
		t.Errorf("resumed create made %d bytes", got)
	}
	tc.waitVolume(t, tc.demo, fromSnap, "available")
	if got := tc.readBlock(t, "volume-"+fromSnap, 0, 14); string(got) != "snapshot bytes" {
		t.Errorf("resumed create from a snapshot holds %q", got)
	}
	tc.waitVolume(t, tc.demo, deleting, "deleted")
	if v := tc.waitVolume(t, tc.demo, extending, "available"); v["size"] != 3.0 {
		t.Errorf("resumed extend: size %v", v["size"])
	}
	if got := tc.blockSize(t, "volume-"+extending); got != 3*GiB {
		t.Errorf("resumed extend: block has %d bytes", got)
	}
	if got := tc.readBlock(t, "volume-"+extending, 0, 7); string(got) != "grow me" {
		t.Errorf("resumed extend: bytes %q", got)
	}
	tc.waitSnapshot(t, tc.demo, snapCreating, "available")
	if got := tc.readBlock(t, "snapshot-"+snapCreating, 4096, 12); string(got) != "acknowledged" {
		t.Errorf("resumed snapshot holds %q", got)
	}
	tc.waitSnapshot(t, tc.demo, snapDeleting, "deleted")
	tc.waitVolume(t, tc.demo, cascade, "deleted")
	tc.waitSnapshot(t, tc.demo, cascadeSnap, "deleted")
	// What was done before is still there.
	if v := tc.waitVolume(t, tc.demo, kept, "available"); v["size"] != 1.0 {
		t.Errorf("kept volume %v", v)
	}
	if got := tc.readBlock(t, "volume-"+kept, 4096, 12); string(got) != "acknowledged" {
		t.Errorf("kept volume's bytes %q", got)
	}
	tc.waitSnapshot(t, tc.demo, snap, "available")

	want := []string{"image-cache-1", "snapshot-" + snap, "snapshot-" + snapCreating}
	for _, id := range []string{kept, creating, src, fromSnap, extending} {
		want = append(want, "volume-"+id)
	}
	slices.Sort(want)
	waitFor(t, "the blocks to be the records'", func() bool { return slices.Equal(tc.blockIDs(t), want) })
	var tasks int
	if err := tc.DB.QueryRow(`SELECT (SELECT count(*) FROM volume_volumes WHERE task IS NOT NULL) +
		(SELECT count(*) FROM volume_snapshots WHERE task IS NOT NULL)`).Scan(&tasks); err != nil {
		t.Fatal(err)
	}
	if tasks != 0 {
		t.Errorf("%d tasks left after the restart", tasks)
	}

	// And a restart with nothing to do changes nothing.
	tc.restart(t)
	if got := tc.blockIDs(t); !slices.Equal(got, want) {
		t.Errorf("blocks after a quiet restart %v, want %v", got, want)
	}
	if l := tc.list(t, "/volumes", tc.demo, "volumes"); len(l) != 5 {
		t.Errorf("%d volumes after a quiet restart, want 5", len(l))
	}
}

func TestBackendFailures(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	broken := errors.New("disk on fire")

	// A create that fails: error, no bytes; it can be deleted.
	tc.blocks.SetErr(broken)
	id := tc.createVolume(t, tc.demo, map[string]any{"size": 1})
	tc.waitVolume(t, tc.demo, id, "error")
	tc.blocks.SetErr(nil)
	if b := tc.blockIDs(t); len(b) != 0 {
		t.Errorf("a failed create left %v", b)
	}
	fault(t, tc.do(t, "POST", "/snapshots", tc.demo, map[string]any{"snapshot": map[string]any{"volume_id": id}}), 400, "badRequest")
	tc.must(t, 202, "DELETE", "/volumes/"+id, tc.demo, nil)
	tc.waitVolume(t, tc.demo, id, "deleted")

	// An extend that fails: error_extending, the old size.
	id = tc.newVolume(t, tc.demo, 1)
	tc.blocks.SetErr(broken)
	tc.must(t, 202, "POST", "/volumes/"+id+"/action", tc.demo, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	v := tc.waitVolume(t, tc.demo, id, "error_extending")
	tc.blocks.SetErr(nil)
	if v["size"] != 1.0 || tc.blockSize(t, "volume-"+id) != GiB {
		t.Errorf("failed extend: size %v, block %d", v["size"], tc.blockSize(t, "volume-"+id))
	}

	// A snapshot that fails: error, no bytes; it can be deleted.
	testAvailable := func() {
		t.Helper()
		tc.must(t, 202, "POST", "/volumes/"+id+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "available"}})
	}
	testAvailable()
	tc.blocks.SetErr(broken)
	sid := tc.createSnapshot(t, tc.demo, map[string]any{"volume_id": id})
	tc.waitSnapshot(t, tc.demo, sid, "error")
	tc.blocks.SetErr(nil)
	if tc.blockSize(t, "snapshot-"+sid) >= 0 {
		t.Errorf("a failed snapshot left bytes")
	}
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"snapshot_id": sid}}), 400, "badRequest")
	tc.must(t, 202, "DELETE", "/snapshots/"+sid, tc.demo, nil)
	tc.waitSnapshot(t, tc.demo, sid, "deleted")

	// A clone with no room: error, no bytes.
	tc.writeBlock(t, "volume-"+id, 0, bytes.Repeat([]byte{1}, 1<<20))
	tc.blocks.SetCapacity(1 << 20)
	clone := tc.createVolume(t, tc.demo, map[string]any{"source_volid": id})
	tc.waitVolume(t, tc.demo, clone, "error")
	tc.blocks.SetCapacity(0)
	if tc.blockSize(t, "volume-"+clone) >= 0 {
		t.Errorf("a failed clone left bytes")
	}

	// A delete that fails: error_deleting; the record stays, then force
	// deletes it.
	tc.blocks.SetErr(broken)
	tc.must(t, 202, "DELETE", "/volumes/"+id, tc.demo, nil)
	tc.waitVolume(t, tc.demo, id, "error_deleting")
	tc.blocks.SetErr(nil)
	if tc.blockSize(t, "volume-"+id) != GiB {
		t.Errorf("a failed delete lost the bytes")
	}
	fault(t, tc.do(t, "DELETE", "/volumes/"+id, tc.demo, nil), 400, "badRequest")
	tc.must(t, 202, "POST", "/volumes/"+id+"/action", tc.admin, map[string]any{"os-force_delete": map[string]any{}})
	tc.waitVolume(t, tc.demo, id, "deleted")
	tc.must(t, 202, "DELETE", "/volumes/"+clone, tc.demo, nil)
	tc.waitVolume(t, tc.demo, clone, "deleted")
	if b := tc.blockIDs(t); len(b) != 0 {
		t.Errorf("blocks left %v", b)
	}
}
