package container

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// viewTime is how Zun shows a container's times: "2018-01-12 09:37:25".
func viewTime(s string) any {
	if s == "" {
		return nil
	}
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return nil
	}
	return t.Format("2006-01-02 15:04:05")
}

// actionTime is how Zun shows actions' and services' times.
func actionTime(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func hostURL(r *http.Request) string { return api.BaseURL(r) + "/container" }

func links(r *http.Request, collection, id string) []api.Link {
	return []api.Link{
		{Rel: "self", Href: hostURL(r) + "/v1/" + collection + "/" + id},
		{Rel: "bookmark", Href: hostURL(r) + "/" + collection + "/" + id},
	}
}

// statusDetail is Docker's one-line state, as Zun shows it.
func statusDetail(ct Container) any {
	switch ct.Status {
	case stCreated:
		return "Created"
	case stRunning, stPaused:
		d := "Up " + since(ct.StartedAt)
		if ct.Status == stPaused {
			d += " (paused)"
		}
		return d
	case stStopped:
		code := 0
		if ct.ExitCode != nil {
			code = *ct.ExitCode
		}
		return fmt.Sprintf("Exited(%d) %s ago ", code, since(ct.FinishedAt))
	case stRestarting:
		return "Restarting"
	}
	return nil
}

func since(s string) string {
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return "0 seconds"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " seconds"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " mins"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " hours"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days"
}

// containerView is a container as the API shows it. withLinks: show,
// create and update carry links, list items do not.
func (s *Service) containerView(r *http.Request, ct Container, withLinks bool) map[string]any {
	c := api.CredentialsFrom(r.Context())
	addresses := map[string]any{}
	for _, p := range ct.Ports {
		list, _ := addresses[p.NetworkID].([]any)
		for _, a := range p.Addresses {
			list = append(list, map[string]any{"addr": a.Addr, "version": a.Version, "port": p.PortID,
				"subnet_id": a.SubnetID, "preserve_on_delete": !p.Owned})
		}
		if list == nil {
			list = []any{}
		}
		addresses[p.NetworkID] = list
	}
	var memory any
	if ct.Memory > 0 {
		memory = strconv.FormatInt(ct.Memory, 10)
	}
	m := map[string]any{
		"uuid": ct.UUID, "name": ct.Name, "image": ct.Image, "user_id": ct.UserID, "project_id": ct.ProjectID,
		"status": ct.Status, "status_reason": nullable(ct.StatusReason), "status_detail": statusDetail(ct),
		"task_state": nullable(ct.TaskState), "command": ct.Command, "entrypoint": ct.Entrypoint, "cpu": ct.CPU,
		"memory": memory, "disk": ct.Disk, "environment": ct.Environment, "labels": ct.Labels,
		"workdir": nullable(ct.Workdir), "ports": []int{}, "hostname": nullable(ct.Hostname), "addresses": addresses,
		"restart_policy": ct.Restart, "interactive": ct.Interactive, "tty": ct.TTY, "image_driver": "glance",
		"security_groups": ct.SecurityGroups, "auto_remove": ct.AutoRemove, "auto_heal": ct.AutoHeal,
		"healthcheck": map[string]any{}, "cpu_policy": "shared", "registry_id": nil,
		"created_at": viewTime(ct.CreatedAt), "updated_at": viewTime(ct.UpdatedAt),
	}
	if len(ct.Entrypoint) == 0 {
		m["entrypoint"] = nil
	}
	if c != nil && c.CloudAdmin() {
		m["host"], m["image_pull_policy"], m["privileged"], m["runtime"] = nullable(ct.Host), nil, false, "runc"
	}
	if withLinks {
		m["links"] = links(r, "containers", ct.UUID)
	}
	return m
}
