package network

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// caller is who makes a request, as the network policy sees it: a cloud
// admin (admin on the admin project or the system, or a service user), or
// a project's member or reader.
type caller struct {
	admin   bool
	project string
	member  bool
}

// system is the service itself (bootstrap, the agent's reports).
var system = caller{admin: true}

func (c caller) owns(project string) bool {
	return c.admin || (c.project != "" && c.project == project)
}

// callerOf reads the credentials of a request. A token scoped to no
// project, with no reader role, is refused.
func callerOf(r *http.Request, action string) (caller, error) {
	cr := api.CredentialsFrom(r.Context())
	if cr == nil {
		return caller{}, api.Unauthorized("The request you have made requires authentication.")
	}
	if cr.CloudAdmin() || cr.HasRole("service") {
		return caller{admin: true, project: cr.ProjectID, member: true}, nil
	}
	if cr.ProjectID == "" || !(cr.HasRole("reader") || cr.HasRole("member") || cr.HasRole("admin")) {
		return caller{}, policyDenied(action)
	}
	return caller{project: cr.ProjectID, member: cr.HasRole("member") || cr.HasRole("admin")}, nil
}

// writerOf is callerOf for a write: the member role is needed.
func writerOf(r *http.Request, action string) (caller, error) {
	c, err := callerOf(r, action)
	if err == nil && !c.member {
		err = policyDenied(action)
	}
	return c, err
}

// Visibility, as upstream's default policy has it: a project sees its own
// resources, networks that are shared or external and their subnets, and
// the ports others made on its networks; an admin sees everything.

func (c caller) seesNetwork(n *Network) bool {
	return c.owns(n.ProjectID) || n.Shared || n.External
}

func (c caller) seesSubnet(sn *Subnet, net *Network) bool {
	return c.owns(sn.ProjectID) || (net != nil && c.seesNetwork(net))
}

func (c caller) seesPort(p *Port, netOwner string) bool {
	return c.owns(p.ProjectID) || (netOwner != "" && c.owns(netOwner))
}
