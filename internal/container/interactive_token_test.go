package container

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/agent"
	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/runtime"
)

// wsAnswer is what the websocket's URL answers a plain GET (no upgrade:
// every refusal comes before the websocket is accepted), its request id
// taken out of the body so that two answers can be compared.
func wsAnswer(t *testing.T, tc *testCloud, rawURL string) (int, string, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	res := tc.do(t, "GET", strings.TrimPrefix(u.Path, "/container")+"?"+u.RawQuery, "", nil)
	body := res.Body
	if id := res.Header.Get(api.RequestIDHeader); id != "" {
		body = bytes.ReplaceAll(body, []byte(id), []byte("REQUEST-ID"))
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(body)
}

// TestWebsocketTokenFirst: the websocket tells nothing about a container
// (whether it exists, whether it runs) to a caller without a good token:
// a bad token has the same answer for a running container, a stopped one
// and none at all; only a good token gets Zun's 409 for a container that
// is not running (whether the cloud or the host says so).
func TestWebsocketTokenFirst(t *testing.T) {
	tc := newTestCloud(t)
	client, host := withTerminals(t, tc)
	ctx := context.Background()
	ct := tc.create(t, tc.Demo, true, map[string]any{"name": "tokbox", "command": []string{"sh"}, "interactive": true})
	id := ct["uuid"].(string)
	tc.waitStatus(t, tc.Demo, id, stRunning)
	removed := false
	t.Cleanup(func() {
		if !removed {
			tc.remove(t, tc.Demo, id)
		}
	})
	if _, err := client.Ensure(ctx, host, agent.ServerRequest{Spec: runtime.Spec{ID: id, Image: "busybox",
		Process: runtime.Process{Args: []string{"sh"}, Env: []string{"PS1=# "}, Terminal: true}}, Running: true}); err != nil {
		t.Fatal(err)
	}

	// Good tokens, taken while it runs: three execs and an attach.
	execURL := func() (string, string) {
		res := must(t, 200, tc.do(t, "POST", "/v1/containers/tokbox/execute?command=sh&interactive=true&run=false", tc.Demo, nil)).JSON(t)
		return res["proxy_url"].(string), res["exec_id"].(string)
	}
	exec1, execID := execURL()
	exec2, _ := execURL()
	exec3, _ := execURL()
	var attachURL string
	if err := json.Unmarshal(must(t, 200, tc.do(t, "GET", "/v1/containers/tokbox/attach", tc.Demo, nil)).Body, &attachURL); err != nil {
		t.Fatal(err)
	}

	// Bad tokens: wrong, missing, or another session's, for this
	// container and for one that does not exist.
	none := newUUID()
	exec1Token := func() string { u, _ := url.Parse(exec1); return u.Query().Get("token") }()
	bad := func(uuid string) []string {
		base := tc.URL() + "/container/websocket?"
		return []string{
			base + "token=" + newUUID() + "&uuid=" + uuid + "&exec_id=" + execID,
			base + "token=" + newUUID() + "&uuid=" + uuid,
			base + "token=" + exec1Token + "&uuid=" + uuid, // an exec's token as an attach's
			base + "token=" + exec1Token + "&uuid=" + uuid + "&exec_id=" + strings.Repeat("a", 64),
			base + "uuid=" + uuid + "&exec_id=" + execID,
			base + "token=&uuid=" + uuid,
		}
	}
	// The one answer to a bad token.
	want := func(t *testing.T, rawURL string) (int, string, string) {
		t.Helper()
		status, typ, body := wsAnswer(t, tc, rawURL)
		zunError(t, response{StatusCode: status, Body: []byte(body)}, 403, "container.invalid-websocket-token", "Websocket token is invalid")
		return status, typ, body
	}
	ref := make([][3]any, 0)
	check := func(t *testing.T, label string, urls []string) {
		t.Helper()
		for i, u := range urls {
			s, typ, b := want(t, u)
			if len(ref) <= i {
				ref = append(ref, [3]any{s, typ, b})
				continue
			}
			if got := [3]any{s, typ, b}; got != ref[i] {
				t.Fatalf("%s: a bad token (%s) answered %v, for a container that does not exist %v", label, u, got, ref[i])
			}
		}
	}
	check(t, "no container", bad(none))
	check(t, "running", bad(id))

	// Stopped, by the cloud only (its host still runs it): a bad token
	// is answered as for no container; the good one gets the 409 (the
	// host takes the token and starts nothing: RefuseTerminal).
	tc.action(t, tc.Demo, id, "stop")
	tc.waitStatus(t, tc.Demo, id, stStopped)
	check(t, "stopped", bad(id))
	check(t, "no container, again", bad(none))
	status, _, body := wsAnswer(t, tc, exec1)
	zunError(t, response{StatusCode: status, Body: []byte(body)}, 409, "container.invalid-state-exception",
		"Cannot execute container "+id+" in Stopped state")

	// The token was taken: it is now a bad one, answered as such.
	s, typ, b := want(t, exec1)
	if s2, typ2, b2 := want(t, strings.Replace(exec1, "uuid="+id, "uuid="+none, 1)); s != s2 || typ != typ2 || b != b2 {
		t.Fatalf("a used token: %d %s %s, for no container %d %s %s", s, typ, b, s2, typ2, b2)
	}

	// Stopped on its host too: the host refuses the good tokens
	// (runtime.ErrState), and that is the 409 as well.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if st, err := client.Action(sctx, host, agent.ServerAction{ID: id, Action: "stop", Timeout: time.Second}); err != nil || st.Status != runtime.Stopped {
		t.Fatalf("stopping on the host: %v %v", st, err)
	}
	check(t, "stopped on its host", bad(id))
	status, _, body = wsAnswer(t, tc, exec2)
	zunError(t, response{StatusCode: status, Body: []byte(body)}, 409, "container.invalid-state-exception",
		"Cannot execute container "+id+" in Stopped state")
	status, _, body = wsAnswer(t, tc, attachURL)
	zunError(t, response{StatusCode: status, Body: []byte(body)}, 409, "container.invalid-state-exception",
		"Cannot attach container "+id+" in Stopped state")

	// Gone: a good token is a bad one, answered as for any.
	tc.remove(t, tc.Demo, id)
	removed = true
	check(t, "removed", bad(id))
	want(t, exec3)
}
