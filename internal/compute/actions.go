package compute

import (
	"context"
	"database/sql"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// powerAction is a server action that the host carries out.
type powerAction struct {
	name    string   // instance action and conflict message name
	hostOp  string   // Hosts.Action argument
	from    []string // vm_states it may start from
	task    string
	toVM    string
	toPower int
}

var powerActions = map[string]powerAction{
	"os-stop":     {"stop", ActionStop, []string{vmActive, vmError}, taskPoweringOff, vmStopped, PowerShutdown},
	"os-start":    {"start", ActionStart, []string{vmStopped}, taskPoweringOn, vmActive, PowerRunning},
	"reboot-soft": {"reboot", ActionRebootSoft, []string{vmActive}, taskRebooting, vmActive, PowerRunning},
	"reboot-hard": {"reboot", ActionRebootHard, []string{vmActive, vmStopped, vmPaused, vmSuspended, vmError}, taskRebootHard, vmActive, PowerRunning},
	"pause":       {"pause", ActionPause, []string{vmActive}, taskPausing, vmPaused, PowerPaused},
	"unpause":     {"unpause", ActionUnpause, []string{vmPaused}, taskUnpausing, vmActive, PowerRunning},
	"suspend":     {"suspend", ActionSuspend, []string{vmActive, vmPaused}, taskSuspending, vmSuspended, PowerSuspended},
	"resume":      {"resume", ActionResume, []string{vmSuspended}, taskResuming, vmActive, PowerRunning},
}

var actionByTask = map[string]powerAction{}

func init() {
	for _, a := range powerActions {
		actionByTask[a.task] = a
	}
}

// checkActionable refuses an action (name) on a server that is locked
// (to all but admins), busy (a task state), or in a vm_state not in from,
// as Nova answers: 409.
func checkActionable(c *api.Credentials, sv Server, name string, from []string) error {
	if sv.Locked && !isAdmin(c) {
		return api.Conflict("Instance %s is locked", sv.ID)
	}
	if sv.TaskState != "" {
		return api.Conflict("Cannot '%s' instance %s while it is in task_state %s", name, sv.ID, sv.TaskState)
	}
	if !contains(from, sv.VMState) {
		return api.Conflict("Cannot '%s' instance %s while it is in vm_state %s", name, sv.ID, sv.VMState)
	}
	return nil
}

// beginAction moves a server into the action's task state if its states
// allow it, in one statement, so two racing actions cannot both start.
func (s *Service) beginAction(ctx context.Context, r *http.Request, sv Server, name, task string, from []string) error {
	if err := checkActionable(api.CredentialsFrom(ctx), sv, name, from); err != nil {
		return err
	}
	args := []any{task, nowText(), sv.ID}
	q := `UPDATE compute_servers SET task_state=?, updated_at=? WHERE id=? AND task_state IS NULL AND deleted=0 AND vm_state IN (`
	for i, f := range from {
		if i > 0 {
			q += ","
		}
		q += "?"
		args = append(args, f)
	}
	res, err := s.db.ExecContext(ctx, q+")", args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Conflict("Cannot '%s' instance %s while it is in task_state %s", name, sv.ID, "busy")
	}
	return s.startAction(ctx, r, sv, name)
}

// runAction carries out a power action on the host and records the result.
func (s *Service) runAction(ctx context.Context, id string, a powerAction) {
	sv, err := s.loadServer(ctx, s.db, id)
	if err != nil || sv.Deleted || sv.TaskState != a.task {
		return
	}
	if sv.Host == "" {
		err = errNoHost
	} else {
		if a.hostOp == ActionStart || a.hostOp == ActionRebootSoft || a.hostOp == ActionRebootHard {
			// The volumes' block devices first: after a reboot of the
			// host they are attached again, maybe under other names, and
			// the server must boot with its own volumes, not whatever
			// took their old device names.
			err = s.replugVolumes(ctx, sv)
		}
		if err == nil {
			err = s.hosts.Action(ctx, sv.Host, id, a.hostOp)
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("server action failed", "server", id, "action", a.name, "err", err)
		// The server keeps its state; the action's failure is recorded.
		s.setState(ctx, id, sv.VMState, "", sv.Power, nil)
		s.finishAction(ctx, id, a.name, err)
		return
	}
	s.setState(ctx, id, a.toVM, "", a.toPower, nil)
	s.finishAction(ctx, id, a.name, nil)
}

// startAction records an instance action (os-instance-actions).
func (s *Service) startAction(ctx context.Context, r *http.Request, sv Server, action string) error {
	c := api.CredentialsFrom(ctx)
	reqID := api.RequestID(ctx)
	if reqID == "" {
		reqID = "req-" + newUUID()
	}
	now := nowText()
	_, err := s.db.ExecContext(ctx, `INSERT INTO compute_instance_actions(server_id, request_id, action, user_id, project_id, start_time, host, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, sv.ID, reqID, action, c.UserID, c.ProjectID, now, sv.Host, now)
	return err
}

// finishAction closes the newest open action of that name.
func (s *Service) finishAction(ctx context.Context, id, action string, failure error) {
	result, msg := "Success", sql.NullString{}
	if failure != nil {
		result, msg = "Error", sql.NullString{String: "Error", Valid: true}
	}
	now := nowText()
	_, err := s.db.ExecContext(ctx, `UPDATE compute_instance_actions SET finish_time=?, result=?, message=?, updated_at=?
		WHERE id=(SELECT max(id) FROM compute_instance_actions WHERE server_id=? AND action=? AND finish_time IS NULL)`,
		now, result, msg, now, id, action)
	if err != nil {
		s.log.Error("recording instance action", "server", id, "action", action, "err", err)
	}
}

func (s *Service) handleListInstanceActions(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	id := r.PathValue("id")
	sv, err := s.loadServer(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	if (!isAdmin(c) && sv.ProjectID != c.ProjectID) || (sv.Deleted && !v.AtLeast(2, 21)) {
		return serverNotFound(id)
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT action, request_id, user_id, project_id, start_time, coalesce(message, ''), updated_at
		FROM compute_instance_actions WHERE server_id=? ORDER BY id DESC`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		var action, req, user, project, start, msg, updated string
		if err := rows.Scan(&action, &req, &user, &project, &start, &msg, &updated); err != nil {
			return err
		}
		m := map[string]any{"action": action, "instance_uuid": id, "request_id": req, "user_id": user, "project_id": project,
			"start_time": usgTime(start), "message": nilIfEmpty(msg)}
		if v.AtLeast(2, 58) {
			m["updated_at"] = usgTime(updated)
		}
		out = append(out, m)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"instanceActions": out})
	return nil
}

func (s *Service) handleShowInstanceAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	id, req := r.PathValue("id"), r.PathValue("req")
	sv, err := s.loadServer(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	if (!isAdmin(c) && sv.ProjectID != c.ProjectID) || (sv.Deleted && !v.AtLeast(2, 21)) {
		return serverNotFound(id)
	}
	var action, user, project, start, msg, updated, finish, result, host string
	err = s.db.QueryRowContext(r.Context(), `SELECT action, user_id, project_id, start_time, coalesce(message, ''), updated_at,
		coalesce(finish_time, ''), coalesce(result, ''), host FROM compute_instance_actions WHERE server_id=? AND request_id=? ORDER BY id DESC LIMIT 1`,
		id, req).Scan(&action, &user, &project, &start, &msg, &updated, &finish, &result, &host)
	if err == sql.ErrNoRows {
		return api.NotFound("Action %s could not be found.", req)
	}
	if err != nil {
		return err
	}
	m := map[string]any{"action": action, "instance_uuid": id, "request_id": req, "user_id": user, "project_id": project,
		"start_time": usgTime(start), "message": nilIfEmpty(msg)}
	if v.AtLeast(2, 58) {
		m["updated_at"] = usgTime(updated)
	}
	if isAdmin(c) || v.AtLeast(2, 51) {
		ev := map[string]any{"event": "compute_" + action + "_instance", "start_time": usgTime(start),
			"finish_time": usgTime(finish), "result": nilIfEmpty(result)}
		if isAdmin(c) {
			ev["traceback"] = nil
			if v.AtLeast(2, 62) {
				ev["host"] = host
			}
		}
		if v.AtLeast(2, 62) {
			ev["hostId"] = hostID(project, host)
		}
		m["events"] = []any{ev}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"instanceAction": m})
	return nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
