package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// fakeVolumes is Block Storage for compute's tests, following Cinder's
// rules: a volume is available, attaching, in-use or detaching; it has at
// most one attachment; an unknown volume, or another project's, is a 404;
// a volume that is not available cannot be reserved. fail injects an error
// into a method, by name. It is safe for concurrent use.
type fakeVolumes struct {
	mu      sync.Mutex
	vols    map[string]*fakeVolume
	atts    map[string]*fakeAttachment
	fail    map[string]error
	deleted []string // volumes DeleteOnTermination deleted
}

type fakeVolume struct {
	project, status string
	readOnly        bool
	attachment      string
}

type fakeAttachment struct {
	volume, server, host, device string
}

func newFakeVolumes() *fakeVolumes {
	return &fakeVolumes{vols: map[string]*fakeVolume{}, atts: map[string]*fakeAttachment{}, fail: map[string]error{}}
}

// add makes an available volume of project and returns its id.
func (f *fakeVolumes) add(project string, readOnly bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := newUUID()
	f.vols[id] = &fakeVolume{project: project, status: "available", readOnly: readOnly}
	return id
}

func fakeBlock(volumeID string) string { return "volumes/" + volumeID }

// setFail makes method fail with err (nil: succeed again).
func (f *fakeVolumes) setFail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = err
}

// status is a volume's status, "deleted" when it is gone.
func (f *fakeVolumes) status(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.vols[id]
	if v == nil {
		return "deleted"
	}
	return v.status
}

// attachment is a volume's attachment, if it has one.
func (f *fakeVolumes) attachment(volumeID string) (string, fakeAttachment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.vols[volumeID]
	if v == nil || v.attachment == "" {
		return "", fakeAttachment{}, false
	}
	return v.attachment, *f.atts[v.attachment], true
}

func (f *fakeVolumes) deletedOnTermination() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.deleted...)
}

func (f *fakeVolumes) Reserve(ctx context.Context, c *api.Credentials, volumeID, serverID, attachmentID string) (VolumeConnection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Reserve"]; err != nil {
		return VolumeConnection{}, err
	}
	if a := f.atts[attachmentID]; a != nil {
		if a.volume != volumeID || a.server != serverID {
			return VolumeConnection{}, api.Conflict("Attachment %s exists for another volume or server.", attachmentID)
		}
		return VolumeConnection{AttachmentID: attachmentID, Block: fakeBlock(volumeID), ReadOnly: f.vols[volumeID].readOnly}, nil
	}
	v := f.vols[volumeID]
	if v == nil || !(c.CloudAdmin() || c.ProjectID == v.project) {
		return VolumeConnection{}, api.NotFound("Volume %s could not be found.", volumeID)
	}
	if v.attachment != "" && f.atts[v.attachment].server == serverID {
		return VolumeConnection{}, api.BadRequest("Invalid volume: volume %s already attached to server %s.", volumeID, serverID)
	}
	if v.status != "available" {
		return VolumeConnection{}, api.BadRequest("Invalid volume: Volume %s status must be available or downloading to reserve, but the current status is %s.", volumeID, v.status)
	}
	id := attachmentID
	if id == "" {
		id = newUUID()
	}
	f.atts[id] = &fakeAttachment{volume: volumeID, server: serverID}
	v.attachment, v.status = id, "attaching"
	return VolumeConnection{AttachmentID: id, Block: fakeBlock(volumeID), ReadOnly: v.readOnly}, nil
}

// lookup returns an attachment and its volume, under f.mu.
func (f *fakeVolumes) lookup(attachmentID string) (*fakeAttachment, *fakeVolume, error) {
	a := f.atts[attachmentID]
	if a == nil {
		return nil, nil, api.NotFound("Attachment %s could not be found.", attachmentID)
	}
	return a, f.vols[a.volume], nil
}

func (f *fakeVolumes) Attached(ctx context.Context, attachmentID, host, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Attached"]; err != nil {
		return err
	}
	a, v, err := f.lookup(attachmentID)
	if err != nil {
		return err
	}
	// attaching, or in-use already when a restart repeats the call.
	if v.status != "attaching" && v.status != "in-use" {
		return api.BadRequest("Invalid volume: volume %s is %s, not attaching.", a.volume, v.status)
	}
	a.host, a.device, v.status = host, device, "in-use"
	return nil
}

func (f *fakeVolumes) Unreserve(ctx context.Context, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Unreserve"]; err != nil {
		return err
	}
	return f.drop(attachmentID)
}

// drop ends an attachment, under f.mu; a missing one is not an error.
func (f *fakeVolumes) drop(attachmentID string) error {
	_, v, err := f.lookup(attachmentID)
	if err != nil {
		return nil
	}
	delete(f.atts, attachmentID)
	v.attachment, v.status = "", "available"
	return nil
}

func (f *fakeVolumes) BeginDetach(ctx context.Context, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["BeginDetach"]; err != nil {
		return err
	}
	_, v, err := f.lookup(attachmentID)
	if err != nil {
		return err
	}
	if v.status != "in-use" {
		return api.BadRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.")
	}
	v.status = "detaching"
	return nil
}

func (f *fakeVolumes) RollDetach(ctx context.Context, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["RollDetach"]; err != nil {
		return err
	}
	_, v, err := f.lookup(attachmentID)
	if err != nil {
		return err
	}
	v.status = "in-use"
	return nil
}

func (f *fakeVolumes) Detached(ctx context.Context, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["Detached"]; err != nil {
		return err
	}
	return f.drop(attachmentID)
}

func (f *fakeVolumes) DeleteOnTermination(ctx context.Context, volumeID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["DeleteOnTermination"]; err != nil {
		return err
	}
	v := f.vols[volumeID]
	if v == nil {
		return nil
	}
	if v.attachment != "" || v.status != "available" {
		return api.BadRequest("Invalid volume: Volume status must be available or error, but current status is: %s.", v.status)
	}
	delete(f.vols, volumeID)
	f.deleted = append(f.deleted, volumeID)
	return nil
}

// gatedHosts is FakeHosts with calls that can be made to fail or to wait
// (until opened, or until the service stops), by method name.
type gatedHosts struct {
	*FakeHosts
	mu    sync.Mutex
	fails map[string]error
	gates map[string]*gate
}

type gate struct {
	once    sync.Once
	entered chan struct{} // closed when a call reaches the gate
	release chan struct{}
}

func (h *gatedHosts) setFail(method string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails[method] = err
}

// hold makes calls of method wait; the gate's entered is closed when one
// does.
func (h *gatedHosts) hold(method string) *gate {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gates[method] = g
	return g
}

// open lets the calls of method held go on.
func (h *gatedHosts) open(method string) {
	h.mu.Lock()
	g := h.gates[method]
	delete(h.gates, method)
	h.mu.Unlock()
	if g != nil {
		close(g.release)
	}
}

func (h *gatedHosts) pass(ctx context.Context, method string) error {
	h.mu.Lock()
	g, err := h.gates[method], h.fails[method]
	h.mu.Unlock()
	if g != nil {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (h *gatedHosts) EnsureServer(ctx context.Context, host string, spec ServerSpec) error {
	if err := h.pass(ctx, "EnsureServer"); err != nil {
		return err
	}
	return h.FakeHosts.EnsureServer(ctx, host, spec)
}

func (h *gatedHosts) Action(ctx context.Context, host, id, action string) error {
	if err := h.pass(ctx, "Action"); err != nil {
		return err
	}
	return h.FakeHosts.Action(ctx, host, id, action)
}

func (h *gatedHosts) SetVolumes(ctx context.Context, host, id string, attach []HostVolume, detach []string) error {
	if err := h.pass(ctx, "SetVolumes"); err != nil {
		return err
	}
	return h.FakeHosts.SetVolumes(ctx, host, id, attach, detach)
}

// volCloud is a test cloud whose compute service has Block Storage (vols)
// and hosts that can be made to fail or wait (gh).
type volCloud struct {
	*testCloud
	vols *fakeVolumes
	gh   *gatedHosts
}

func newVolCloud(t *testing.T) *volCloud {
	t.Helper()
	vc := &volCloud{testCloud: newTestCloud(t), vols: newFakeVolumes()}
	vc.gh = &gatedHosts{FakeHosts: vc.hosts, fails: map[string]error{}, gates: map[string]*gate{}}
	vc.svc.Close()
	vc.start(t)
	return vc
}

// start (re)opens the compute service, with its volumes set before Start
// as the daemon does.
func (vc *volCloud) start(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	svc, err := New(ctx, vc.db, Config{}, vc.images, vc.nets, vc.gh, vc.place, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc.SetVolumes(vc.vols)
	svc.router = svc.Router(vc.ident, vc.ident.URL(), nil)
	if err := svc.RegisterHost(ctx, HostInfo{Name: "host1", IP: "10.1.0.1", VCPUs: 4, MemoryMB: 8192, DiskGB: 100}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	vc.svc = svc
	vc.Mount("/compute", svc.router)
}

func mvHeader(mv string) []string {
	if mv == "" {
		return nil
	}
	return []string{"OpenStack-API-Version", "compute " + mv}
}

func attachmentsPath(server string) string {
	return "/compute/v2.1/servers/" + server + "/os-volume_attachments"
}

// attach posts a volume attachment; extra goes into volumeAttachment.
func (vc *volCloud) attach(t *testing.T, token, server, volume, mv string, extra map[string]any) response {
	t.Helper()
	a := map[string]any{"volumeId": volume}
	for k, v := range extra {
		a[k] = v
	}
	return vc.do(t, "POST", attachmentsPath(server), token, map[string]any{"volumeAttachment": a}, mvHeader(mv)...)
}

func (vc *volCloud) detach(t *testing.T, token, server, volume string) response {
	t.Helper()
	return vc.do(t, "DELETE", attachmentsPath(server)+"/"+volume, token, nil)
}

// activeServer makes a demo server and waits for it to be ACTIVE.
func (vc *volCloud) activeServer(t *testing.T, name string) string {
	t.Helper()
	id := vc.createServer(t, vc.demo, name, "42", nil)
	vc.waitStatus(t, vc.demo, id, "ACTIVE")
	return id
}

// eventually waits for cond; the deadline only stops a hung test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits until the server's attach and detach workers are done:
// each finishes the instance action its request opened.
func (vc *volCloud) settle(t *testing.T, server string) {
	t.Helper()
	eventually(t, "the volume work of "+server, func() bool {
		var n int
		if err := vc.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_instance_actions
			WHERE server_id=? AND action IN ('attach_volume', 'detach_volume') AND finish_time IS NULL`, server).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}

// rowStatus is the status of the server's attachment of volume in
// compute's table, "" when there is none.
func (vc *volCloud) rowStatus(t *testing.T, server, volume string) string {
	t.Helper()
	var st string
	err := vc.db.QueryRowContext(context.Background(), `SELECT status FROM compute_volume_attachments WHERE server_id=? AND volume_id=?`,
		server, volume).Scan(&st)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return st
}

// listed is the volumeIds os-volume_attachments lists for a server.
func (vc *volCloud) listed(t *testing.T, server string) []string {
	t.Helper()
	list := vc.must(t, 200, vc.do(t, "GET", attachmentsPath(server), vc.demo, nil)).JSON(t)["volumeAttachments"].([]any)
	out := []string{}
	for _, a := range list {
		out = append(out, a.(map[string]any)["volumeId"].(string))
	}
	return out
}

// hostBlocks is what the host gives the server, as block@device.
func (vc *volCloud) hostBlocks(server string) []string {
	out := []string{}
	for _, v := range vc.hosts.Volumes(server) {
		s := v.Block + "@" + v.Device
		if v.ReadOnly {
			s += ":ro"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// volumesAttached is a server's os-extended-volumes:volumes_attached at
// 2.79, as id:delete_on_termination.
func (vc *volCloud) volumesAttached(t *testing.T, server string) []string {
	t.Helper()
	sv := vc.must(t, 200, vc.do(t, "GET", "/compute/v2.1/servers/"+server, vc.demo, nil, mvHeader("2.79")...)).JSON(t)["server"].(map[string]any)
	out := []string{}
	for _, a := range sv["os-extended-volumes:volumes_attached"].([]any) {
		m := a.(map[string]any)
		out = append(out, fmt.Sprintf("%s:%v", m["id"], m["delete_on_termination"]))
	}
	sort.Strings(out)
	return out
}

// actionResults are the results of the server's instance actions of that
// name, newest first, as an admin sees them.
func (vc *volCloud) actionResults(t *testing.T, server, action string) []string {
	t.Helper()
	path := "/compute/v2.1/servers/" + server + "/os-instance-actions"
	list := vc.must(t, 200, vc.do(t, "GET", path, vc.admin, nil)).JSON(t)["instanceActions"].([]any)
	out := []string{}
	for _, a := range list {
		m := a.(map[string]any)
		if m["action"] != action {
			continue
		}
		ia := vc.must(t, 200, vc.do(t, "GET", path+"/"+m["request_id"].(string), vc.admin, nil)).JSON(t)["instanceAction"].(map[string]any)
		ev := ia["events"].([]any)[0].(map[string]any)
		out = append(out, fmt.Sprint(ev["result"]))
	}
	return out
}

func sameStrings(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestVolumeAttachAndDetach(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1, v2, v3, v4 := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, true), vc.vols.add(vc.demoProject, false)

	// At 2.79: id and delete_on_termination, no attachment_id.
	a1 := vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "2.79", nil)).JSON(t)["volumeAttachment"].(map[string]any)
	if a1["device"] != "/dev/vdb" || a1["volumeId"] != v1 || a1["id"] != v1 || a1["serverId"] != sv || a1["delete_on_termination"] != false ||
		a1["tag"] != nil {
		t.Fatalf("attachment at 2.79: %v", a1)
	}
	if _, ok := a1["attachment_id"]; ok {
		t.Fatalf("attachment_id at 2.79: %v", a1)
	}
	vc.settle(t, sv)
	if st := vc.vols.status(v1); st != "in-use" {
		t.Fatalf("volume %s after attaching", st)
	}
	att1, fa, _ := vc.vols.attachment(v1)
	if fa.server != sv || fa.host != "host1" || fa.device != "/dev/vdb" {
		t.Fatalf("Block Storage's attachment %+v", fa)
	}
	if got := vc.hostBlocks(sv); !sameStrings(got, []string{fakeBlock(v1) + "@/dev/vdb"}) {
		t.Fatalf("host volumes %v", got)
	}
	if got := vc.volumesAttached(t, sv); !sameStrings(got, []string{v1 + ":false"}) {
		t.Fatalf("volumes_attached %v", got)
	}

	// At 2.89: attachment_id and bdm_uuid instead of id; a tag; an sd
	// device name is taken as the vd one.
	a2 := vc.must(t, 200, vc.attach(t, vc.demo, sv, v2, "2.89", map[string]any{"tag": "data", "delete_on_termination": true, "device": "/dev/sdc"})).JSON(t)["volumeAttachment"].(map[string]any)
	if a2["device"] != "/dev/vdc" || a2["volumeId"] != v2 || a2["serverId"] != sv || a2["tag"] != "data" || a2["delete_on_termination"] != true ||
		a2["bdm_uuid"] == nil || a2["bdm_uuid"] == "" {
		t.Fatalf("attachment at 2.89: %v", a2)
	}
	if _, ok := a2["id"]; ok {
		t.Fatalf("id at 2.89: %v", a2)
	}
	att2, _, _ := vc.vols.attachment(v2)
	if a2["attachment_id"] != att2 || att2 == att1 {
		t.Fatalf("attachment_id %v, Block Storage has %s", a2["attachment_id"], att2)
	}

	// Without a microversion: the 2.1 view. A free requested device is
	// honoured; a taken one gets the next free.
	a3 := vc.must(t, 200, vc.attach(t, vc.demo, sv, v3, "", map[string]any{"device": "/dev/vdf"})).JSON(t)["volumeAttachment"].(map[string]any)
	if len(a3) != 4 || a3["device"] != "/dev/vdf" || a3["id"] != v3 || a3["volumeId"] != v3 || a3["serverId"] != sv {
		t.Fatalf("attachment at 2.1: %v", a3)
	}
	a4 := vc.must(t, 200, vc.attach(t, vc.demo, sv, v4, "", map[string]any{"device": "/dev/xvdb"})).JSON(t)["volumeAttachment"].(map[string]any)
	if a4["device"] != "/dev/vdd" {
		t.Fatalf("taken device requested: %v", a4)
	}
	vc.settle(t, sv)
	for _, v := range []string{v1, v2, v3, v4} {
		if st := vc.vols.status(v); st != "in-use" {
			t.Fatalf("volume %s is %s", v, st)
		}
	}
	want := []string{fakeBlock(v1) + "@/dev/vdb", fakeBlock(v2) + "@/dev/vdc", fakeBlock(v3) + "@/dev/vdf:ro", fakeBlock(v4) + "@/dev/vdd"}
	sort.Strings(want)
	if got := vc.hostBlocks(sv); !sameStrings(got, want) {
		t.Fatalf("host volumes %v, want %v", got, want)
	}
	wantAttached := []string{v1 + ":false", v2 + ":true", v3 + ":false", v4 + ":false"}
	sort.Strings(wantAttached)
	if got := vc.volumesAttached(t, sv); !sameStrings(got, wantAttached) {
		t.Fatalf("volumes_attached %v", got)
	}
	// The list, in device order, with limit and offset.
	if got := vc.listed(t, sv); !sameStrings(got, []string{v1, v2, v4, v3}) {
		t.Fatalf("list %v", got)
	}
	page := vc.must(t, 200, vc.do(t, "GET", attachmentsPath(sv)+"?limit=1&offset=1", vc.demo, nil)).JSON(t)["volumeAttachments"].([]any)
	if len(page) != 1 || page[0].(map[string]any)["volumeId"] != v2 {
		t.Fatalf("page %v", page)
	}
	vc.must(t, 400, vc.do(t, "GET", attachmentsPath(sv)+"?offset=-1", vc.demo, nil))
	show := vc.must(t, 200, vc.do(t, "GET", attachmentsPath(sv)+"/"+v2, vc.demo, nil, mvHeader("2.89")...)).JSON(t)["volumeAttachment"].(map[string]any)
	if show["bdm_uuid"] != a2["bdm_uuid"] || show["attachment_id"] != att2 || show["tag"] != "data" || show["device"] != "/dev/vdc" {
		t.Fatalf("show %v, attached as %v", show, a2)
	}
	vc.must(t, 404, vc.do(t, "GET", attachmentsPath(sv)+"/"+newUUID(), vc.demo, nil))
	// Another project sees neither the server nor its attachments.
	vc.must(t, 404, vc.do(t, "GET", attachmentsPath(sv), vc.altToken(t), nil))

	// Detach: 202, then the host lets go and the volume is available.
	vc.must(t, 202, vc.detach(t, vc.demo, sv, v1))
	vc.settle(t, sv)
	if st := vc.vols.status(v1); st != "available" {
		t.Fatalf("volume %s after detaching", st)
	}
	if _, _, ok := vc.vols.attachment(v1); ok {
		t.Fatal("Block Storage's attachment left after detaching")
	}
	for _, b := range vc.hostBlocks(sv) {
		if strings.HasPrefix(b, fakeBlock(v1)) {
			t.Fatalf("host still has %s: %v", v1, vc.hostBlocks(sv))
		}
	}
	if len(vc.hostBlocks(sv)) != 3 {
		t.Fatalf("host volumes %v", vc.hostBlocks(sv))
	}
	vc.must(t, 404, vc.do(t, "GET", attachmentsPath(sv)+"/"+v1, vc.demo, nil))
	if got := vc.listed(t, sv); !sameStrings(got, []string{v2, v4, v3}) {
		t.Fatalf("list after detach %v", got)
	}
	// Not attached (any more, or to this server): 404.
	vc.must(t, 404, vc.detach(t, vc.demo, sv, v1))
	vc.must(t, 404, vc.detach(t, vc.demo, sv, newUUID()))
	// The freed device is given again.
	again := vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil)).JSON(t)["volumeAttachment"].(map[string]any)
	if again["device"] != "/dev/vdb" {
		t.Fatalf("reattached at %v", again["device"])
	}
	vc.settle(t, sv)

	if got := vc.actionResults(t, sv, "attach_volume"); !sameStrings(got, []string{"Success", "Success", "Success", "Success", "Success"}) {
		t.Fatalf("attach_volume actions %v", got)
	}
	if got := vc.actionResults(t, sv, "detach_volume"); !sameStrings(got, []string{"Success"}) {
		t.Fatalf("detach_volume actions %v", got)
	}
}

// altToken is a member of another project.
func (vc *volCloud) altToken(t *testing.T) string {
	t.Helper()
	token, _, _ := vc.AddUser("alt", "alt", "member")
	return token
}

func TestVolumeAttachErrors(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	adminSv := vc.createServer(t, vc.admin, "admin-vm", "42", nil)
	vc.waitStatus(t, vc.admin, adminSv, "ACTIVE")
	mine := vc.vols.add(vc.demoProject, false)
	theirs := vc.vols.add(vc.AdminProject, false)

	cases := []struct {
		name   string
		server string
		body   any
		mv     string
		status int
		msg    string
	}{
		{"no volumeId", sv, map[string]any{"volumeAttachment": map[string]any{}}, "", 400, "'volumeId' is a required property"},
		{"no volumeAttachment", sv, map[string]any{"volume": map[string]any{"volumeId": mine}}, "", 400, "volumeId"},
		{"volumeId not a string", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": 5}}, "", 400, ""},
		{"not JSON", sv, "{", "", 400, ""},
		{"unknown volume", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": newUUID()}}, "", 404, "could not be found"},
		{"another project's volume", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": theirs}}, "", 404, "Volume " + theirs + " could not be found."},
		{"tag before 2.49", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "tag": "t"}}, "2.48", 400, "'tag' was unexpected"},
		{"delete_on_termination before 2.79", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "delete_on_termination": true}}, "2.78", 400, "'delete_on_termination' was unexpected"},
		{"delete_on_termination at 2.1", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "delete_on_termination": true}}, "", 400, "'delete_on_termination' was unexpected"},
		{"root device", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "device": "/dev/vda"}}, "", 400, "device path"},
		{"device not under /dev", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "device": "vdb"}}, "", 400, "device path"},
		{"device path escapes", sv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine, "device": "/dev/../vdb"}}, "", 400, "device path"},
		{"unknown server", newUUID(), map[string]any{"volumeAttachment": map[string]any{"volumeId": mine}}, "", 404, "could not be found"},
		{"another project's server", adminSv, map[string]any{"volumeAttachment": map[string]any{"volumeId": mine}}, "", 404, "could not be found"},
	}
	for _, c := range cases {
		res := vc.do(t, "POST", attachmentsPath(c.server), vc.demo, c.body, mvHeader(c.mv)...)
		if res.StatusCode != c.status || !strings.Contains(string(res.Body), c.msg) {
			t.Errorf("%s: %d %s", c.name, res.StatusCode, res.Body)
		}
	}
	vc.must(t, 404, vc.do(t, "GET", attachmentsPath(newUUID()), vc.demo, nil))
	vc.must(t, 404, vc.detach(t, vc.demo, newUUID(), mine))
	// Nothing was made by the refused requests.
	if got := vc.listed(t, sv); len(got) != 0 {
		t.Fatalf("attachments after refused requests: %v", got)
	}
	if vc.vols.status(mine) != "available" || vc.vols.status(theirs) != "available" {
		t.Fatalf("volumes %s %s after refused requests", vc.vols.status(mine), vc.vols.status(theirs))
	}

	// The same volume twice: 400, the first attachment stays.
	vc.must(t, 200, vc.attach(t, vc.demo, sv, mine, "", nil))
	vc.settle(t, sv)
	res := vc.must(t, 400, vc.attach(t, vc.demo, sv, mine, "", nil))
	if !strings.Contains(string(res.Body), "already attached") {
		t.Fatalf("twice: %s", res.Body)
	}
	// A volume in use by another server is refused by Block Storage: 400.
	other := vc.activeServer(t, "other")
	vc.must(t, 400, vc.attach(t, vc.demo, other, mine, "", nil))
	if got := vc.listed(t, other); len(got) != 0 {
		t.Fatalf("attachments of the refused server: %v", got)
	}
	if vc.vols.status(mine) != "in-use" || !sameStrings(vc.listed(t, sv), []string{mine}) {
		t.Fatalf("volume %s, attachments %v", vc.vols.status(mine), vc.listed(t, sv))
	}
	// A detach Block Storage refuses leaves the attachment.
	vc.vols.setFail("BeginDetach", api.BadRequest("Invalid volume: volume is busy."))
	vc.must(t, 400, vc.detach(t, vc.demo, sv, mine))
	vc.vols.setFail("BeginDetach", nil)
	if vc.rowStatus(t, sv, mine) != "attached" || vc.vols.status(mine) != "in-use" {
		t.Fatalf("after a refused detach: %s, volume %s", vc.rowStatus(t, sv, mine), vc.vols.status(mine))
	}
}

func TestVolumeAttachConflicts(t *testing.T) {
	vc := newVolCloud(t)
	v1, v2 := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false)

	// In BUILD.
	g := vc.gh.hold("EnsureServer")
	building := vc.createServer(t, vc.demo, "building", "42", nil)
	<-g.entered
	res := vc.must(t, 409, vc.attach(t, vc.demo, building, v1, "", nil))
	if !strings.Contains(string(res.Body), "conflictingRequest") {
		t.Fatalf("fault %s", res.Body)
	}
	vc.gh.open("EnsureServer")
	vc.waitStatus(t, vc.demo, building, "ACTIVE")

	// In ERROR.
	vc.gh.setFail("EnsureServer", errors.New("no room"))
	broken := vc.createServer(t, vc.demo, "broken", "42", nil)
	vc.waitStatus(t, vc.demo, broken, "ERROR")
	vc.gh.setFail("EnsureServer", nil)
	vc.must(t, 409, vc.attach(t, vc.demo, broken, v1, "", nil))

	// Locked: the owner may neither attach nor detach; an admin may.
	sv := building
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	vc.settle(t, sv)
	vc.must(t, 202, vc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", vc.admin, map[string]any{"lock": nil}))
	res = vc.must(t, 409, vc.attach(t, vc.demo, sv, v2, "", nil))
	if !strings.Contains(string(res.Body), "locked") {
		t.Fatalf("locked: %s", res.Body)
	}
	vc.must(t, 409, vc.detach(t, vc.demo, sv, v1))
	vc.must(t, 200, vc.attach(t, vc.admin, sv, v2, "", nil))
	vc.settle(t, sv)
	vc.must(t, 202, vc.detach(t, vc.admin, sv, v2))
	vc.settle(t, sv)
	vc.must(t, 202, vc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", vc.admin, map[string]any{"unlock": nil}))

	// With a task (stopping): 409 both ways.
	g = vc.gh.hold("Action")
	vc.must(t, 202, vc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", vc.demo, map[string]any{"os-stop": nil}))
	<-g.entered
	res = vc.must(t, 409, vc.attach(t, vc.demo, sv, v2, "", nil))
	if !strings.Contains(string(res.Body), "task_state powering-off") {
		t.Fatalf("task: %s", res.Body)
	}
	vc.must(t, 409, vc.detach(t, vc.demo, sv, v1))
	vc.gh.open("Action")
	vc.waitStatus(t, vc.demo, sv, "SHUTOFF")

	// A stopped server takes volumes.
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v2, "", nil))
	vc.settle(t, sv)
	if vc.vols.status(v2) != "in-use" || len(vc.hostBlocks(sv)) != 2 {
		t.Fatalf("volume %s, host %v", vc.vols.status(v2), vc.hostBlocks(sv))
	}
	if vc.vols.status(v1) != "in-use" || vc.rowStatus(t, sv, v1) != "attached" {
		t.Fatalf("refused detaches changed v1: %s %s", vc.vols.status(v1), vc.rowStatus(t, sv, v1))
	}
}

// TestVolumeAttachConcurrent: attaches racing on one server each get
// their own device; the same volume racing is attached once.
func TestVolumeAttachConcurrent(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	const n = 6
	vols := make([]string, n)
	for i := range vols {
		vols[i] = vc.vols.add(vc.demoProject, false)
	}
	devices := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := vc.attach(t, vc.demo, sv, vols[i], "", nil)
			if res.StatusCode == 200 {
				devices[i] = res.JSON(t)["volumeAttachment"].(map[string]any)["device"].(string)
			}
		}()
	}
	wg.Wait()
	sort.Strings(devices)
	if !sameStrings(devices, []string{"/dev/vdb", "/dev/vdc", "/dev/vdd", "/dev/vde", "/dev/vdf", "/dev/vdg"}) {
		t.Fatalf("devices %v", devices)
	}
	one := vc.vols.add(vc.demoProject, false)
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = vc.attach(t, vc.demo, sv, one, "", nil).StatusCode
		}()
	}
	wg.Wait()
	sort.Ints(codes)
	if fmt.Sprint(codes) != "[200 400 400 400 400 400]" {
		t.Fatalf("racing attaches of one volume: %v", codes)
	}
	vc.settle(t, sv)
	if got := vc.hostBlocks(sv); len(got) != n+1 {
		t.Fatalf("host volumes %v", got)
	}
	for _, v := range append(vols, one) {
		if st := vc.vols.status(v); st != "in-use" {
			t.Fatalf("volume %s is %s", v, st)
		}
	}
}

// TestVolumeHostFailures: a host or Block Storage failure while attaching
// leaves nothing half-made; one while detaching leaves the volume attached.
func TestVolumeHostFailures(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1, v2 := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false)
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	vc.settle(t, sv)
	only1 := []string{fakeBlock(v1) + "@/dev/vdb"}

	// The host fails: the attachment goes, the volume is available again.
	vc.gh.setFail("SetVolumes", errors.New("agent unreachable"))
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v2, "", nil))
	vc.settle(t, sv)
	vc.gh.setFail("SetVolumes", nil)
	if got := vc.listed(t, sv); !sameStrings(got, []string{v1}) {
		t.Fatalf("attachments after a host failure: %v", got)
	}
	if st := vc.vols.status(v2); st != "available" {
		t.Fatalf("volume %s after a host failure", st)
	}
	if _, _, ok := vc.vols.attachment(v2); ok {
		t.Fatal("Block Storage's attachment left after a host failure")
	}
	if got := vc.hostBlocks(sv); !sameStrings(got, only1) {
		t.Fatalf("host volumes %v", got)
	}
	vc.must(t, 404, vc.do(t, "GET", attachmentsPath(sv)+"/"+v2, vc.demo, nil))

	// Block Storage fails to record it: the host gives it back too.
	vc.vols.setFail("Attached", api.Errorf(500, "database gone"))
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v2, "", nil))
	vc.settle(t, sv)
	vc.vols.setFail("Attached", nil)
	if got := vc.listed(t, sv); !sameStrings(got, []string{v1}) {
		t.Fatalf("attachments after a Block Storage failure: %v", got)
	}
	if st := vc.vols.status(v2); st != "available" {
		t.Fatalf("volume %s after a Block Storage failure", st)
	}
	if got := vc.hostBlocks(sv); !sameStrings(got, only1) {
		t.Fatalf("host volumes %v after a Block Storage failure", got)
	}
	if got := vc.actionResults(t, sv, "attach_volume"); !sameStrings(got, []string{"Error", "Error", "Success"}) {
		t.Fatalf("attach_volume actions %v", got)
	}
	// It can be attached after all.
	a := vc.must(t, 200, vc.attach(t, vc.demo, sv, v2, "", nil)).JSON(t)["volumeAttachment"].(map[string]any)
	vc.settle(t, sv)
	if a["device"] != "/dev/vdc" || vc.vols.status(v2) != "in-use" {
		t.Fatalf("attach after failures: %v, volume %s", a, vc.vols.status(v2))
	}

	// The host fails to detach: still attached, in-use, on the host.
	vc.gh.setFail("SetVolumes", errors.New("device busy"))
	vc.must(t, 202, vc.detach(t, vc.demo, sv, v1))
	vc.settle(t, sv)
	vc.gh.setFail("SetVolumes", nil)
	if st := vc.vols.status(v1); st != "in-use" {
		t.Fatalf("volume %s after a failed detach", st)
	}
	if vc.rowStatus(t, sv, v1) != "attached" || !sameStrings(vc.listed(t, sv), []string{v1, v2}) {
		t.Fatalf("attachment %q after a failed detach, list %v", vc.rowStatus(t, sv, v1), vc.listed(t, sv))
	}
	if got := vc.hostBlocks(sv); len(got) != 2 {
		t.Fatalf("host volumes %v after a failed detach", got)
	}
	if got := vc.actionResults(t, sv, "detach_volume"); !sameStrings(got, []string{"Error"}) {
		t.Fatalf("detach_volume actions %v", got)
	}
	// And it detaches once the host can.
	vc.must(t, 202, vc.detach(t, vc.demo, sv, v1))
	vc.settle(t, sv)
	if vc.vols.status(v1) != "available" || !sameStrings(vc.listed(t, sv), []string{v2}) ||
		!sameStrings(vc.hostBlocks(sv), []string{fakeBlock(v2) + "@/dev/vdc"}) {
		t.Fatalf("after detaching: volume %s, list %v, host %v", vc.vols.status(v1), vc.listed(t, sv), vc.hostBlocks(sv))
	}
}

func TestDeleteServerReleasesVolumes(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	keep, drop := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false)
	vc.must(t, 200, vc.attach(t, vc.demo, sv, keep, "2.79", map[string]any{"delete_on_termination": false}))
	vc.must(t, 200, vc.attach(t, vc.demo, sv, drop, "2.79", map[string]any{"delete_on_termination": true}))
	vc.settle(t, sv)
	want := []string{keep + ":false", drop + ":true"}
	sort.Strings(want)
	if got := vc.volumesAttached(t, sv); !sameStrings(got, want) {
		t.Fatalf("volumes_attached %v", got)
	}

	// Block Storage fails: the delete fails, nothing is lost.
	vc.vols.setFail("Detached", api.Errorf(503, "Block Storage is down"))
	vc.must(t, 204, vc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, vc.demo, nil))
	vc.waitStatus(t, vc.demo, sv, "ERROR")
	vc.vols.setFail("Detached", nil)
	if got := vc.volumesAttached(t, sv); !sameStrings(got, want) {
		t.Fatalf("volumes_attached after a failed delete %v", got)
	}
	if vc.vols.status(keep) != "in-use" || vc.vols.status(drop) != "in-use" || len(vc.vols.deletedOnTermination()) != 0 {
		t.Fatalf("volumes %s %s deleted %v after a failed delete", vc.vols.status(keep), vc.vols.status(drop), vc.vols.deletedOnTermination())
	}

	vc.must(t, 204, vc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, vc.demo, nil))
	vc.waitStatus(t, vc.demo, sv, "DELETED")
	if st := vc.vols.status(keep); st != "available" {
		t.Fatalf("kept volume %s", st)
	}
	if _, _, ok := vc.vols.attachment(keep); ok {
		t.Fatal("attachment left after the server's delete")
	}
	if st := vc.vols.status(drop); st != "deleted" || !sameStrings(vc.vols.deletedOnTermination(), []string{drop}) {
		t.Fatalf("delete_on_termination volume %s, deleted %v", st, vc.vols.deletedOnTermination())
	}
	var n int
	if err := vc.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_volume_attachments WHERE server_id=?`, sv).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d attachment rows left (%v)", n, err)
	}
	// The freed volume goes to another server.
	other := vc.activeServer(t, "other")
	vc.must(t, 200, vc.attach(t, vc.demo, other, keep, "", nil))
	vc.settle(t, other)
	if vc.vols.status(keep) != "in-use" {
		t.Fatalf("volume %s on another server", vc.vols.status(keep))
	}
}

func TestRebuildReplugsVolumes(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1 := vc.vols.add(vc.demoProject, false)
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	vc.settle(t, sv)
	before, _ := vc.hosts.Spec(sv)
	rebuild := func() {
		t.Helper()
		vc.must(t, 202, vc.do(t, "POST", "/compute/v2.1/servers/"+sv+"/action", vc.demo, map[string]any{"rebuild": map[string]any{"imageRef": vc.cirros}}))
	}
	rebuild()
	vc.waitStatus(t, vc.demo, sv, "ACTIVE")
	after, _ := vc.hosts.Spec(sv)
	if after.Generation <= before.Generation {
		t.Fatalf("generation %d after rebuild, was %d: the host did not make the server anew", after.Generation, before.Generation)
	}
	if got := vc.hostBlocks(sv); !sameStrings(got, []string{fakeBlock(v1) + "@/dev/vdb"}) {
		t.Fatalf("host volumes after rebuild %v", got)
	}
	if vc.vols.status(v1) != "in-use" || !sameStrings(vc.listed(t, sv), []string{v1}) {
		t.Fatalf("volume %s, list %v after rebuild", vc.vols.status(v1), vc.listed(t, sv))
	}
	// A host that cannot give the volumes back fails the rebuild.
	vc.gh.setFail("SetVolumes", errors.New("loop device gone"))
	rebuild()
	sv2 := vc.waitStatus(t, vc.demo, sv, "ERROR")
	vc.gh.setFail("SetVolumes", nil)
	if !strings.Contains(sv2["fault"].(map[string]any)["message"].(string), "loop device gone") {
		t.Fatalf("fault %v", sv2["fault"])
	}
}

// TestVolumeWorkResumesAfterRestart: an attach or a detach the service
// stopped in the middle of is finished by the next Start.
func TestVolumeWorkResumesAfterRestart(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1 := vc.vols.add(vc.demoProject, false)

	g := vc.gh.hold("SetVolumes")
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	<-g.entered
	// While attaching: listed, not detachable.
	if !sameStrings(vc.listed(t, sv), []string{v1}) || vc.vols.status(v1) != "attaching" {
		t.Fatalf("while attaching: list %v, volume %s", vc.listed(t, sv), vc.vols.status(v1))
	}
	vc.must(t, 400, vc.detach(t, vc.demo, sv, v1))
	vc.svc.Close()
	vc.gh.open("SetVolumes")
	if st := vc.rowStatus(t, sv, v1); st != "attaching" {
		t.Fatalf("attachment %q after the stop", st)
	}
	if st := vc.vols.status(v1); st != "attaching" {
		t.Fatalf("volume %s after the stop", st)
	}
	vc.start(t)
	vc.settle(t, sv)
	if st := vc.rowStatus(t, sv, v1); st != "attached" {
		t.Fatalf("attachment %q after the restart", st)
	}
	if vc.vols.status(v1) != "in-use" || !sameStrings(vc.hostBlocks(sv), []string{fakeBlock(v1) + "@/dev/vdb"}) {
		t.Fatalf("after the restart: volume %s, host %v", vc.vols.status(v1), vc.hostBlocks(sv))
	}
	if got := vc.actionResults(t, sv, "attach_volume"); !sameStrings(got, []string{"Success"}) {
		t.Fatalf("attach_volume actions %v", got)
	}

	g = vc.gh.hold("SetVolumes")
	vc.must(t, 202, vc.detach(t, vc.demo, sv, v1))
	<-g.entered
	vc.svc.Close()
	vc.gh.open("SetVolumes")
	if st, vs := vc.rowStatus(t, sv, v1), vc.vols.status(v1); st != "detaching" || vs != "detaching" {
		t.Fatalf("after the stop: attachment %q, volume %s", st, vs)
	}
	vc.start(t)
	vc.settle(t, sv)
	if st := vc.rowStatus(t, sv, v1); st != "" {
		t.Fatalf("attachment %q after the restart", st)
	}
	if vc.vols.status(v1) != "available" || len(vc.hostBlocks(sv)) != 0 {
		t.Fatalf("after the restart: volume %s, host %v", vc.vols.status(v1), vc.hostBlocks(sv))
	}
	if got := vc.actionResults(t, sv, "detach_volume"); !sameStrings(got, []string{"Success"}) {
		t.Fatalf("detach_volume actions %v", got)
	}
}

// lockWaiters is how many workers and requests hold or wait for a
// server's lock.
func (vc *volCloud) lockWaiters(id string) int { return vc.svc.locks.Holders(id) }

// TestVolumeAttachRacingDelete: an attach that passed its checks while
// the server was busy, and that a delete overtook, is refused and leaves
// the volume available.
func TestVolumeAttachRacingDelete(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1, v2 := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false)
	// v1's worker holds the server while its host call waits.
	g := vc.gh.hold("SetVolumes")
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	<-g.entered
	// v2's request passes its checks and waits for the server.
	done := make(chan response, 1)
	go func() { done <- vc.attach(t, vc.demo, sv, v2, "", nil) }()
	eventually(t, "the attach to wait for the server", func() bool { return vc.lockWaiters(sv) == 2 })
	// The server is deleted meanwhile.
	vc.must(t, 204, vc.do(t, "DELETE", "/compute/v2.1/servers/"+sv, vc.demo, nil))
	vc.gh.open("SetVolumes")
	res := <-done
	if res.StatusCode != 409 && res.StatusCode != 404 {
		t.Fatalf("attach overtaken by a delete: %d %s", res.StatusCode, res.Body)
	}
	vc.waitStatus(t, vc.demo, sv, "DELETED")
	if vc.vols.status(v1) != "available" || vc.vols.status(v2) != "available" {
		t.Fatalf("volumes %s %s after the delete", vc.vols.status(v1), vc.vols.status(v2))
	}
	var n int
	if err := vc.db.QueryRowContext(context.Background(), `SELECT count(*) FROM compute_volume_attachments WHERE server_id=?`, sv).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d attachment rows left (%v)", n, err)
	}
}

// TestVolumeDetachRecordFailure: when Block Storage fails to record a
// detach the host made, compute keeps the detach and finishes it later.
func TestVolumeDetachRecordFailure(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	v1 := vc.vols.add(vc.demoProject, false)
	vc.must(t, 200, vc.attach(t, vc.demo, sv, v1, "", nil))
	vc.settle(t, sv)
	vc.vols.setFail("Detached", api.Errorf(503, "Block Storage is down"))
	vc.must(t, 202, vc.detach(t, vc.demo, sv, v1))
	vc.settle(t, sv)
	if got := vc.actionResults(t, sv, "detach_volume"); !sameStrings(got, []string{"Error"}) {
		t.Fatalf("detach_volume actions %v", got)
	}
	if st := vc.rowStatus(t, sv, v1); st != "detaching" {
		t.Fatalf("attachment %q after Block Storage failed to record the detach", st)
	}
	if len(vc.hostBlocks(sv)) != 0 {
		t.Fatalf("host volumes %v", vc.hostBlocks(sv))
	}
	vc.vols.setFail("Detached", nil)
	vc.svc.Close()
	vc.start(t)
	eventually(t, "the detach to be finished", func() bool { return vc.rowStatus(t, sv, v1) == "" })
	if st := vc.vols.status(v1); st != "available" {
		t.Fatalf("volume %s after the restart", st)
	}
}

// TestInterruptedReserveRolledBack: an attach the service stopped before
// it answered (its row still "reserving") is undone by the next Start,
// whether or not Block Storage had reserved the volume.
func TestInterruptedReserveRolledBack(t *testing.T) {
	vc := newVolCloud(t)
	sv := vc.activeServer(t, "vm")
	reserved, never := vc.vols.add(vc.demoProject, false), vc.vols.add(vc.demoProject, false)
	ctx := context.Background()
	attachmentID := newUUID()
	demo := &api.Credentials{ProjectID: vc.demoProject}
	if _, err := vc.vols.Reserve(ctx, demo, reserved, sv, attachmentID); err != nil {
		t.Fatal(err)
	}
	vc.svc.Close()
	for i, r := range []struct{ volume, attachment, device string }{{reserved, attachmentID, "/dev/vdb"}, {never, newUUID(), "/dev/vdc"}} {
		if _, err := vc.db.ExecContext(ctx, `INSERT INTO compute_volume_attachments(id, server_id, volume_id, attachment_id, device, block,
			status, created_at) VALUES (?, ?, ?, ?, ?, '', 'reserving', ?)`, fmt.Sprint("row-", i), sv, r.volume, r.attachment, r.device, nowText()); err != nil {
			t.Fatal(err)
		}
	}
	vc.start(t)
	if got := vc.listed(t, sv); len(got) != 0 {
		t.Fatalf("attachments after the restart: %v", got)
	}
	if vc.vols.status(reserved) != "available" || vc.vols.status(never) != "available" {
		t.Fatalf("volumes %s %s after the restart", vc.vols.status(reserved), vc.vols.status(never))
	}
	if _, _, ok := vc.vols.attachment(reserved); ok {
		t.Fatal("the interrupted reservation is left")
	}
	// Both can be attached again.
	vc.must(t, 200, vc.attach(t, vc.demo, sv, reserved, "", nil))
	vc.must(t, 200, vc.attach(t, vc.demo, sv, never, "", nil))
	vc.settle(t, sv)
	if len(vc.hostBlocks(sv)) != 2 {
		t.Fatalf("host volumes %v", vc.hostBlocks(sv))
	}
}
