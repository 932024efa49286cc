package volume

import (
	"sync"
	"testing"

	"github.com/monostack/monostack/internal/testcloud"
)

// attachment returns the volume's only attachment as the volume shows it.
func onlyAttachment(t testing.TB, v map[string]any) map[string]any {
	t.Helper()
	atts := v["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments %v, want one", atts)
	}
	return atts[0].(map[string]any)
}

func TestAttachDetach(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	ctx := t.Context()
	demo := tc.creds(t, tc.demo)
	vol := tc.newVolume(t, tc.demo, 1)
	server := newUUID()

	conn, err := tc.svc.Reserve(ctx, demo, vol, server, "")
	if err != nil {
		t.Fatal(err)
	}
	if conn.AttachmentID == "" || conn.VolumeID != vol || conn.Block != "volume-"+vol || conn.ReadOnly {
		t.Errorf("connection %+v", conn)
	}
	v := tc.waitVolume(t, tc.demo, vol, "attaching")
	if a := v["attachments"].([]any); len(a) != 0 {
		t.Errorf("an attaching volume shows attachments %v", a)
	}
	// Reserving again for the same server, or deleting, is refused.
	if _, err := tc.svc.Reserve(ctx, demo, vol, server, ""); err == nil {
		t.Errorf("a second Reserve for the same server succeeded")
	}
	fault(t, tc.do(t, "DELETE", "/volumes/"+vol, tc.demo, nil), 400, "badRequest")

	if err := tc.svc.Attached(ctx, conn.AttachmentID, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	v = tc.waitVolume(t, tc.demo, vol, "in-use")
	a := onlyAttachment(t, v)
	for k, want := range map[string]any{"server_id": server, "device": "/dev/vdb", "attachment_id": conn.AttachmentID, "volume_id": vol} {
		if a[k] != want {
			t.Errorf("attachment %s = %v, want %v", k, a[k], want)
		}
	}
	if a["attached_at"] == nil {
		t.Errorf("attachment has no attached_at: %v", a)
	}
	// The host is the admin's to see, as upstream shows it.
	if h, ok := a["host_name"]; !ok || h != nil {
		t.Errorf("a member sees host_name %v", h)
	}
	if a := onlyAttachment(t, tc.waitVolume(t, tc.admin, vol, "in-use")); a["host_name"] != "host1" || a["server_id"] != server {
		t.Errorf("admin sees attachment %v", a)
	}
	for _, tt := range []struct {
		name   string
		server string
	}{{"same server", server}, {"another server", newUUID()}} {
		if _, err := tc.svc.Reserve(ctx, demo, vol, tt.server, ""); err == nil || !isStatus(err, 400) {
			t.Errorf("Reserve of an in-use volume for the %s: %v", tt.name, err)
		}
	}
	// Attached, it is not deleted, not even by force.
	fault(t, tc.do(t, "DELETE", "/volumes/"+vol, tc.demo, nil), 400, "badRequest")
	fault(t, tc.do(t, "DELETE", "/volumes/"+vol+"?force=true", tc.admin, nil), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-force_delete": map[string]any{}}), 400, "badRequest")
	if err := tc.svc.DeleteOnTermination(ctx, vol); err == nil {
		t.Errorf("DeleteOnTermination of an attached volume succeeded")
	}
	tc.waitVolume(t, tc.demo, vol, "in-use")

	// Detach: begin, roll back, begin again, done.
	if err := tc.svc.BeginDetach(ctx, conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	v = tc.waitVolume(t, tc.demo, vol, "detaching")
	if onlyAttachment(t, v)["attachment_id"] != conn.AttachmentID {
		t.Errorf("detaching volume's attachment %v", v["attachments"])
	}
	if err := tc.svc.RollDetach(ctx, conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	v = tc.waitVolume(t, tc.demo, vol, "in-use")
	onlyAttachment(t, v)
	if err := tc.svc.BeginDetach(ctx, conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "detaching")
	if err := tc.svc.Detached(ctx, conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	v = tc.waitVolume(t, tc.demo, vol, "available")
	if a := v["attachments"].([]any); len(a) != 0 {
		t.Errorf("attachments after detach %v", a)
	}
	if n := tc.rows(t, "volume_attachments"); n != 0 {
		t.Errorf("%d attachment rows left", n)
	}
	// Detaching again, or what never was, changes nothing.
	if err := tc.svc.Detached(ctx, conn.AttachmentID); err != nil {
		t.Errorf("Detached twice: %v", err)
	}
	if err := tc.svc.BeginDetach(ctx, conn.AttachmentID); err == nil || !isStatus(err, 404) {
		t.Errorf("BeginDetach of a gone attachment: %v", err)
	}
	tc.waitVolume(t, tc.demo, vol, "available")

	// Reserve and give back: available again.
	conn, err = tc.svc.Reserve(ctx, demo, vol, server, "")
	if err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "attaching")
	if err := tc.svc.Unreserve(ctx, conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "available")

	// A volume not yet available cannot be reserved.
	testcloud.Must(t, 202, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}}))
	if _, err := tc.svc.Reserve(ctx, demo, vol, server, ""); err == nil || !isStatus(err, 400) {
		t.Errorf("Reserve of a volume in error: %v", err)
	}
	if _, err := tc.svc.Reserve(ctx, demo, newUUID(), server, ""); err == nil || !isStatus(err, 404) {
		t.Errorf("Reserve of an unknown volume: %v", err)
	}
	if err := tc.svc.CheckVolume(ctx, demo, vol); err != nil {
		t.Errorf("CheckVolume: %v", err)
	}
	if err := tc.svc.CheckVolume(ctx, tc.creds(t, tc.addMember(t, "alt")), vol); err == nil || !isStatus(err, 404) {
		t.Errorf("CheckVolume by another project: %v", err)
	}
	// DeleteOnTermination deletes a volume left by its server.
	testcloud.Must(t, 202, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "available"}}))
	if err := tc.svc.DeleteOnTermination(ctx, vol); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "deleted")
	if err := tc.svc.DeleteOnTermination(ctx, vol); err != nil {
		t.Errorf("DeleteOnTermination of a gone volume: %v", err)
	}
	waitFor(t, "the block to go", func() bool { return len(tc.blockIDs(t)) == 0 })
}

func TestMultiattach(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	ctx := t.Context()
	demo := tc.creds(t, tc.demo)
	tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "shared",
		"extra_specs": map[string]any{"multiattach": "<is> True"}}})
	vol := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "volume_type": "shared"})
	if v := tc.waitVolume(t, tc.demo, vol, "available"); v["multiattach"] != true || v["volume_type"] != "shared" {
		t.Fatalf("volume of a multiattach type %v", v)
	}
	s1, s2 := newUUID(), newUUID()
	c1, err := tc.svc.Reserve(ctx, demo, vol, s1, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.svc.Attached(ctx, c1.AttachmentID, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	c2, err := tc.svc.Reserve(ctx, demo, vol, s2, "")
	if err != nil {
		t.Fatalf("second attachment of a multiattach volume: %v", err)
	}
	if _, err := tc.svc.Reserve(ctx, demo, vol, s2, ""); err == nil {
		t.Errorf("a second Reserve for the same server succeeded")
	}
	if err := tc.svc.Attached(ctx, c2.AttachmentID, "host2", "/dev/vdc"); err != nil {
		t.Fatal(err)
	}
	v := tc.waitVolume(t, tc.demo, vol, "in-use")
	if a := v["attachments"].([]any); len(a) != 2 {
		t.Fatalf("attachments %v, want 2", a)
	}
	if err := tc.svc.Detached(ctx, c1.AttachmentID); err != nil {
		t.Fatal(err)
	}
	v = tc.waitVolume(t, tc.demo, vol, "in-use")
	if a := onlyAttachment(t, v); a["server_id"] != s2 {
		t.Errorf("the remaining attachment %v", a)
	}
	if err := tc.svc.Detached(ctx, c2.AttachmentID); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "available")

	// Plain volumes are not multiattach: a second server is refused.
	plain := tc.newVolume(t, tc.demo, 1)
	c, err := tc.svc.Reserve(ctx, demo, plain, s1, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.svc.Reserve(ctx, demo, plain, s2, ""); err == nil || !isStatus(err, 400) {
		t.Errorf("second server on an attaching volume: %v", err)
	}
	tc.svc.Attached(ctx, c.AttachmentID, "host1", "/dev/vdb")
	if _, err := tc.svc.Reserve(ctx, demo, plain, s2, ""); err == nil || !isStatus(err, 400) {
		t.Errorf("second server on an in-use volume: %v", err)
	}
}

func TestAttachmentsAPI(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	mv := []string{"OpenStack-API-Version", "volume 3.44"}
	vol := tc.newVolume(t, tc.demo, 1)
	server := newUUID()

	res := tc.must(t, 200, "POST", "/attachments", tc.demo, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": server}}, mv...)
	a := res.JSON(t)["attachment"].(map[string]any)
	id, _ := a["id"].(string)
	if id == "" || a["status"] != "reserved" || a["instance"] != server || a["volume_id"] != vol || a["connection_info"] != nil || a["attach_mode"] != "rw" {
		t.Fatalf("new attachment %v", a)
	}
	tc.waitVolume(t, tc.demo, vol, "reserved")
	if l := tc.list(t, "/attachments", tc.demo, "attachments", mv...); len(l) != 1 || l[0]["id"] != id || l[0]["status"] != "reserved" {
		t.Errorf("list %v", l)
	}
	if l := tc.list(t, "/attachments/detail?volume_id="+vol, tc.demo, "attachments", mv...); len(l) != 1 || l[0]["attach_mode"] != "rw" {
		t.Errorf("detail %v", l)
	}
	if l := tc.list(t, "/attachments?instance_id="+newUUID(), tc.demo, "attachments", mv...); len(l) != 0 {
		t.Errorf("filter by another server %v", l)
	}
	alt := tc.addMember(t, "alt")
	fault(t, tc.do(t, "GET", "/attachments/"+id, alt, nil, mv...), 404, "itemNotFound")
	fault(t, tc.do(t, "DELETE", "/attachments/"+id, alt, nil, mv...), 404, "itemNotFound")
	if l := tc.list(t, "/attachments", alt, "attachments", mv...); len(l) != 0 {
		t.Errorf("another project lists %v", l)
	}

	// The connector: attaching, with the connection info.
	connector := map[string]any{"host": "host1", "initiator": "iqn.test", "platform": "x86_64"}
	res = tc.must(t, 200, "PUT", "/attachments/"+id, tc.demo, map[string]any{"attachment": map[string]any{"connector": connector}}, mv...)
	a = res.JSON(t)["attachment"].(map[string]any)
	ci, _ := a["connection_info"].(map[string]any)
	if a["status"] != "attaching" || ci == nil || ci["driver_volume_type"] == nil {
		t.Fatalf("updated attachment %v", a)
	}
	if data := ci["data"].(map[string]any); data["volume_id"] != vol || data["block"] != "volume-"+vol || data["access_mode"] != "rw" {
		t.Errorf("connection data %v", data)
	}
	tc.waitVolume(t, tc.demo, vol, "attaching")
	if a := tc.must(t, 200, "GET", "/attachments/"+id, tc.demo, nil, mv...).JSON(t)["attachment"].(map[string]any); a["connection_info"] == nil || a["status"] != "attaching" {
		t.Errorf("shown attachment %v", a)
	}

	// os-complete: in-use, the attachment shown on the volume.
	tc.must(t, 204, "POST", "/attachments/"+id+"/action", tc.demo, map[string]any{"os-complete": nil}, mv...)
	v := tc.waitVolume(t, tc.demo, vol, "in-use")
	if va := onlyAttachment(t, v); va["attachment_id"] != id || va["server_id"] != server {
		t.Errorf("volume's attachment %v", va)
	}
	if a := tc.must(t, 200, "GET", "/attachments/"+id, tc.demo, nil, mv...).JSON(t)["attachment"].(map[string]any); a["status"] != "attached" || a["attached_at"] == nil {
		t.Errorf("completed attachment %v", a)
	}
	// A second attachment of the in-use volume is refused.
	fault(t, tc.do(t, "POST", "/attachments", tc.demo, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": newUUID()}}, mv...), 400, "badRequest")

	// DELETE: available again.
	res = tc.must(t, 200, "DELETE", "/attachments/"+id, tc.demo, nil, mv...)
	if l, ok := res.JSON(t)["attachments"].([]any); !ok || len(l) != 0 {
		t.Errorf("DELETE answered %s", res.Body)
	}
	v = tc.waitVolume(t, tc.demo, vol, "available")
	if a := v["attachments"].([]any); len(a) != 0 {
		t.Errorf("attachments after delete %v", a)
	}
	fault(t, tc.do(t, "GET", "/attachments/"+id, tc.demo, nil, mv...), 404, "itemNotFound")

	// Made with a connector: attaching at once; read-only mode.
	res = tc.must(t, 200, "POST", "/attachments", tc.demo, map[string]any{"attachment": map[string]any{"volume_uuid": vol,
		"instance_uuid": server, "connector": connector, "mode": "ro"}}, mv...)
	a = res.JSON(t)["attachment"].(map[string]any)
	if a["status"] != "attaching" || a["attach_mode"] != "ro" || a["connection_info"] == nil {
		t.Errorf("attachment with a connector %v", a)
	}
	tc.waitVolume(t, tc.demo, vol, "attaching")
	tc.must(t, 200, "DELETE", "/attachments/"+a["id"].(string), tc.demo, nil, mv...)
	tc.waitVolume(t, tc.demo, vol, "available")

	// Bad requests.
	for _, tt := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"no volume_uuid", "POST", "/attachments", map[string]any{"attachment": map[string]any{"instance_uuid": server}}, 400},
		{"no attachment", "POST", "/attachments", map[string]any{"volume_uuid": vol}, 400},
		{"unknown volume", "POST", "/attachments", map[string]any{"attachment": map[string]any{"volume_uuid": newUUID(), "instance_uuid": server}}, 404},
		{"bad mode", "POST", "/attachments", map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": server, "mode": "rx"}}, 400},
		{"connector not an object", "POST", "/attachments", map[string]any{"attachment": map[string]any{"volume_uuid": vol, "connector": "host1"}}, 400},
		{"malformed", "POST", "/attachments", `{"attachment": {`, 400},
		{"update unknown", "PUT", "/attachments/" + newUUID(), map[string]any{"attachment": map[string]any{"connector": connector}}, 404},
		{"complete unknown", "POST", "/attachments/" + newUUID() + "/action", map[string]any{"os-complete": nil}, 404},
		{"delete unknown", "DELETE", "/attachments/" + newUUID(), nil, 404},
	} {
		res := tc.do(t, tt.method, tt.path, tc.demo, tt.body, mv...)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
		}
	}
	if n := tc.rows(t, "volume_attachments"); n != 0 {
		t.Errorf("refused attachments left %d rows", n)
	}
	tc.waitVolume(t, tc.demo, vol, "available")

	// Update and action need an attachment that exists; then the body.
	res = tc.must(t, 200, "POST", "/attachments", tc.demo, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": server}}, mv...)
	id = res.JSON(t)["attachment"].(map[string]any)["id"].(string)
	fault(t, tc.do(t, "PUT", "/attachments/"+id, tc.demo, map[string]any{"attachment": map[string]any{}}, mv...), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/attachments/"+id+"/action", tc.demo, map[string]any{"os-fly": nil}, mv...), 400, "badRequest")
	tc.waitVolume(t, tc.demo, vol, "reserved")
}

func TestLegacyAttachActions(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	act := func(body any) response {
		return tc.do(t, "POST", "/volumes/"+vol+"/action", tc.demo, body)
	}
	testcloud.Must(t, 202, act(map[string]any{"os-reserve": nil}))
	tc.waitVolume(t, tc.demo, vol, "attaching")
	testcloud.Must(t, 202, act(map[string]any{"os-unreserve": nil}))
	tc.waitVolume(t, tc.demo, vol, "available")

	server := newUUID()
	testcloud.Must(t, 202, act(map[string]any{"os-reserve": nil}))
	testcloud.Must(t, 202, act(map[string]any{"os-attach": map[string]any{"instance_uuid": server, "mountpoint": "/dev/vdb", "host_name": "h"}}))
	v := tc.waitVolume(t, tc.admin, vol, "in-use")
	a := onlyAttachment(t, v)
	if a["server_id"] != server || a["device"] != "/dev/vdb" || a["host_name"] != "h" {
		t.Errorf("attachment %v", a)
	}
	testcloud.Must(t, 202, act(map[string]any{"os-begin_detaching": nil}))
	tc.waitVolume(t, tc.demo, vol, "detaching")
	testcloud.Must(t, 202, act(map[string]any{"os-roll_detaching": nil}))
	tc.waitVolume(t, tc.demo, vol, "in-use")
	testcloud.Must(t, 202, act(map[string]any{"os-detach": map[string]any{"attachment_id": a["attachment_id"]}}))
	v = tc.waitVolume(t, tc.demo, vol, "available")
	if len(v["attachments"].([]any)) != 0 {
		t.Errorf("attachments after os-detach %v", v["attachments"])
	}
	fault(t, act(map[string]any{"os-detach": nil}), 400, "badRequest")
	fault(t, act(map[string]any{"os-begin_detaching": nil}), 400, "badRequest")
}

// Of servers racing to attach one volume, exactly one gets it.
func TestConcurrentReserve(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	demo := tc.creds(t, tc.demo)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tc.svc.Reserve(t.Context(), demo, vol, newUUID(), "")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !isStatus(err, 400):
			t.Errorf("a losing Reserve: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d Reserves succeeded, want 1", ok)
	}
	if n := tc.rows(t, "volume_attachments"); n != 1 {
		t.Errorf("%d attachments, want 1", n)
	}
	tc.waitVolume(t, tc.demo, vol, "attaching")
}

// os-reset_status with attach_status detached drops the attachments of a
// volume whose server is gone for good.
func TestResetAttachStatus(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := tc.newVolume(t, tc.demo, 1)
	conn, err := tc.svc.Reserve(t.Context(), tc.creds(t, tc.demo), vol, newUUID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.svc.Attached(t.Context(), conn.AttachmentID, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, vol, "in-use")
	fault(t, tc.do(t, "POST", "/volumes/"+vol+"/action", tc.demo, map[string]any{"os-reset_status": map[string]any{"status": "available", "attach_status": "detached"}}), 403, "forbidden")
	tc.must(t, 202, "POST", "/volumes/"+vol+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "available", "attach_status": "detached"}})
	v := tc.waitVolume(t, tc.demo, vol, "available")
	if a := v["attachments"].([]any); len(a) != 0 {
		t.Errorf("attachments after reset %v", a)
	}
	tc.must(t, 202, "DELETE", "/volumes/"+vol, tc.demo, nil)
	tc.waitVolume(t, tc.demo, vol, "deleted")
}

// A Reserve repeated under the same attachment id (a caller's retry after
// a crash) finds the attachment it made.
func TestReserveByAttachmentID(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	ctx := t.Context()
	demo := tc.creds(t, tc.demo)
	vol, other := tc.newVolume(t, tc.demo, 1), tc.newVolume(t, tc.demo, 1)
	server, att := newUUID(), newUUID()
	c1, err := tc.svc.Reserve(ctx, demo, vol, server, att)
	if err != nil {
		t.Fatal(err)
	}
	if c1.AttachmentID != att || c1.Block != "volume-"+vol {
		t.Errorf("connection %+v", c1)
	}
	c2, err := tc.svc.Reserve(ctx, demo, vol, server, att)
	if err != nil || c2 != c1 {
		t.Errorf("repeated Reserve: %+v %v, want %+v", c2, err, c1)
	}
	if n := tc.rows(t, "volume_attachments"); n != 1 {
		t.Errorf("%d attachments, want 1", n)
	}
	tc.waitVolume(t, tc.demo, vol, "attaching")
	for _, tt := range []struct{ name, vol, server string }{{"another volume", other, server}, {"another server", vol, newUUID()}} {
		if _, err := tc.svc.Reserve(ctx, demo, tt.vol, tt.server, att); err == nil || !isStatus(err, 409) {
			t.Errorf("the attachment's id for %s: %v", tt.name, err)
		}
	}
	tc.waitVolume(t, tc.demo, other, "available")
	if err := tc.svc.Attached(ctx, att, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	if a := onlyAttachment(t, tc.waitVolume(t, tc.demo, vol, "in-use")); a["attachment_id"] != att {
		t.Errorf("attachment %v", a)
	}
}
