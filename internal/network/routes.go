package network

import (
	"log/slog"
	"net/http"
	"sort"

	"github.com/monostack/monostack/internal/api"
)

// Router returns the Networking API (Neutron v2.0) under /network. auth
// validates tokens; authURI is the Identity URL sent with 401s. Every
// route needs a token; handlers make the policy decisions, which depend on
// the target's owner (another project's resources are 404, as upstream).
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/network", Fault: api.NeutronFault, Auth: auth, AuthURI: authURI, Log: log})
	any_ := api.Authenticated

	rt.Public("GET ", s.handleVersions) // exactly /network
	rt.Public("GET /{$}", s.handleVersions)
	rt.Public("GET /v2.0", s.handleV2)
	rt.Public("GET /v2.0/{$}", s.handleV2)

	rt.Handle("GET /v2.0/extensions", any_, s.handleExtensions)
	rt.Handle("GET /v2.0/extensions/{alias}", any_, s.handleExtension)
	rt.Handle("GET /v2.0/availability_zones", any_, s.handleAvailabilityZones)
	rt.Handle("GET /v2.0/agents", any_, s.handleListAgents)
	rt.Handle("GET /v2.0/agents/{id}", any_, s.handleShowAgent)

	type crud struct {
		collection                  string
		list, show, create, up, del api.HandlerFunc
	}
	for _, c := range []crud{
		{"networks", s.handleListNetworks, s.handleShowNetwork, s.handleCreateNetwork, s.handleUpdateNetwork, s.handleDeleteNetwork},
		{"subnets", s.handleListSubnets, s.handleShowSubnet, s.handleCreateSubnet, s.handleUpdateSubnet, s.handleDeleteSubnet},
		{"ports", s.handleListPorts, s.handleShowPort, s.handleCreatePort, s.handleUpdatePort, s.handleDeletePort},
		{"routers", s.handleListRouters, s.handleShowRouter, s.handleCreateRouter, s.handleUpdateRouter, s.handleDeleteRouter},
		{"floatingips", s.handleListFIPs, s.handleShowFIP, s.handleCreateFIP, s.handleUpdateFIP, s.handleDeleteFIP},
		{"security-groups", s.handleListSGs, s.handleShowSG, s.handleCreateSG, s.handleUpdateSG, s.handleDeleteSG},
		{"security-group-rules", s.handleListRules, s.handleShowRule, s.handleCreateRule, s.handleUpdateRule, s.handleDeleteRule},
	} {
		base := "/v2.0/" + c.collection
		rt.Handle("GET "+base, any_, c.list)
		rt.Handle("POST "+base, any_, c.create)
		rt.Handle("GET "+base+"/{id}", any_, c.show)
		rt.Handle("PUT "+base+"/{id}", any_, c.up)
		rt.Handle("DELETE "+base+"/{id}", any_, c.del)
		if _, ok := tagged[c.collection]; ok {
			h := s.handleTags(c.collection)
			for _, m := range []string{"GET", "PUT", "POST", "DELETE"} {
				rt.Handle(m+" "+base+"/{id}/tags", any_, h)
			}
			for _, m := range []string{"GET", "PUT", "DELETE"} {
				rt.Handle(m+" "+base+"/{id}/tags/{tag}", any_, h)
			}
		}
	}
	rt.Handle("PUT /v2.0/routers/{id}/add_router_interface", any_, s.handleAddInterface)
	rt.Handle("PUT /v2.0/routers/{id}/remove_router_interface", any_, s.handleRemoveInterface)
	rt.Handle("PUT /v2.0/routers/{id}/add_extraroutes", any_, s.handleExtraRoutes(true))
	rt.Handle("PUT /v2.0/routers/{id}/remove_extraroutes", any_, s.handleExtraRoutes(false))

	rt.Handle("GET /v2.0/quotas", any_, s.handleQuotas)
	rt.Handle("GET /v2.0/quotas/project", any_, s.handleQuotaProject("project"))
	rt.Handle("GET /v2.0/quotas/tenant", any_, s.handleQuotaProject("tenant"))
	rt.Handle("GET /v2.0/quotas/{id}", any_, s.handleShowQuota)
	rt.Handle("GET /v2.0/quotas/{id}/default", any_, s.handleDefaultQuota)
	rt.Handle("GET /v2.0/quotas/{id}/details", any_, s.handleQuotaDetails)
	rt.Handle("GET /v2.0/quotas/{id}/details.json", any_, s.handleQuotaDetails) // gophercloud asks for this form
	rt.Handle("PUT /v2.0/quotas/{id}", any_, s.handleUpdateQuota)
	rt.Handle("DELETE /v2.0/quotas/{id}", any_, s.handleDeleteQuota)
	return rt
}

// handleVersions is version discovery at the service root.
func (s *Service) handleVersions(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": api.BaseURL(r) + "/network/v2.0/"}},
	}}})
	return nil
}

// handleV2 lists the core resources of v2.0.
func (s *Service) handleV2(w http.ResponseWriter, r *http.Request) error {
	base := api.BaseURL(r) + "/network/v2.0/"
	var out []any
	for _, res := range [][2]string{{"subnet", "subnets"}, {"network", "networks"}, {"port", "ports"}} {
		out = append(out, map[string]any{"name": res[0], "collection": res[1],
			"links": []any{map[string]any{"rel": "self", "href": base + res[1]}}})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"resources": out})
	return nil
}

// extension is one entry of /v2.0/extensions.
type extension struct {
	alias, name, description, updated string
}

// extensions are exactly the API extensions this service implements.
var extensions = []extension{
	{"agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"},
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"},
	{"availability_zone", "Availability Zone", "The availability zone extension.", "2015-01-01T10:00:00-00:00"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"},
	{"external-net", "Neutron external network", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"},
	{"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"},
	{"extraroute-atomic", "Atomically add/remove extra routes", "Edit extra routes of a router on server side by atomically adding/removing extra routes", "2019-07-10T00:00:00+00:00"},
	{"filter-validation", "Filter parameters validation", "Provides validation on filter parameters.", "2018-07-04T10:00:00-00:00"},
	{"fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource", "2018-04-09T10:00:00-00:00"},
	{"ip_allocation", "IP Allocation", "IP allocation extension.", "2016-06-10T23:00:00-00:00"},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"},
	{"net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.", "2017-07-12T00:00:00-00:00"},
	{"network_availability_zone", "Network Availability Zone", "Availability zone support for network.", "2015-01-01T10:00:00-00:00"},
	{"pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"},
	{"port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"},
	{"project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "2012-09-07T10:00:00-00:00"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"},
	{"quotas", "Quota management support", "Expose functions for quotas management per project", "2012-07-29T10:00:00-00:00"},
	{"router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"},
	{"router_availability_zone", "Router Availability Zone", "Availability zone support for router.", "2015-01-01T10:00:00-00:00"},
	{"security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"},
	{"security-groups-normalized-cidr", "Normalized CIDR field for security group rules", "Add new field with normalized remote_ip_prefix cidr in SG rule", "2020-07-28T10:00:00-00:00"},
	{"sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"},
	{"standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.", "2016-09-12T10:00:00-00:00"},
	{"tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation", "2019-12-29T19:00:00-00:00"},
}

func (e extension) wire() map[string]any {
	return map[string]any{"alias": e.alias, "name": e.name, "description": e.description, "updated": e.updated, "links": []any{}}
}

// Aliases returns the aliases of the implemented extensions.
func Aliases() []string {
	out := make([]string, len(extensions))
	for i, e := range extensions {
		out[i] = e.alias
	}
	sort.Strings(out)
	return out
}

func (s *Service) handleExtensions(w http.ResponseWriter, r *http.Request) error {
	out := make([]any, len(extensions))
	for i, e := range extensions {
		out[i] = e.wire()
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"extensions": out})
	return nil
}

func (s *Service) handleExtension(w http.ResponseWriter, r *http.Request) error {
	alias := r.PathValue("alias")
	for _, e := range extensions {
		if e.alias == alias {
			api.WriteJSON(w, http.StatusOK, map[string]any{"extension": e.wire()})
			return nil
		}
	}
	return nerr(http.StatusNotFound, "ExtensionsNotFound", "Extension with alias %s does not exist", alias)
}

func (s *Service) handleAvailabilityZones(w http.ResponseWriter, r *http.Request) error {
	lq, err := parseList(r, []string{"name", "resource", "state"})
	if err != nil {
		return err
	}
	var items []map[string]any
	for _, res := range []string{"network", "router"} {
		items = append(items, map[string]any{"id": s.cfg.AvailabilityZone + "/" + res, "name": s.cfg.AvailabilityZone,
			"resource": res, "state": "available"})
	}
	kept := make([]map[string]any, 0, len(items))
	for _, it := range items {
		if ok, err := lq.match(it); err != nil {
			return err
		} else if ok {
			delete(it, "id")
			kept = append(kept, selectFields(it, lq.fields))
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"availability_zones": kept})
	return nil
}
