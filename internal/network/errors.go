package network

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// Neutron faults: {"NeutronError": {"type", "message", "detail"}} where type
// is the upstream exception's class name. These constructors keep the
// upstream names and messages in one place.

func nerr(status int, typ, format string, args ...any) *api.Error {
	return &api.Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// badRequest is webob's HTTPBadRequest, which the API layer raises for
// malformed bodies and attribute validation.
func badRequest(format string, args ...any) *api.Error {
	return nerr(http.StatusBadRequest, "HTTPBadRequest", format, args...)
}

// invalidAttr is attribute validation's "Invalid input for X. Reason: ...".
func invalidAttr(attr, format string, args ...any) *api.Error {
	return badRequest("Invalid input for %s. Reason: %s.", attr, fmt.Sprintf(format, args...))
}

// invalidInput is neutron-lib's InvalidInput.
func invalidInput(format string, args ...any) *api.Error {
	return nerr(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: %s.", fmt.Sprintf(format, args...))
}

// badResource is neutron-lib's BadRequest: "Bad router request: ...".
func badResource(resource, format string, args ...any) *api.Error {
	return nerr(http.StatusBadRequest, "BadRequest", "Bad %s request: %s.", resource, fmt.Sprintf(format, args...))
}

func policyDenied(action string) *api.Error {
	return nerr(http.StatusForbidden, "PolicyNotAuthorized", "(rule:%s) is disallowed by policy", action)
}

func httpNotFound() *api.Error {
	return nerr(http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
}

func networkNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "NetworkNotFound", "Network %s could not be found.", id)
}

func subnetNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "SubnetNotFound", "Subnet %s could not be found.", id)
}

func portNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "PortNotFound", "Port %s could not be found.", id)
}

func routerNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "RouterNotFound", "Router %s could not be found", id)
}

func floatingIPNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "FloatingIPNotFound", "Floating IP %s could not be found", id)
}

func sgNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
}

func sgRuleNotFound(id string) *api.Error {
	return nerr(http.StatusNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
}

func networkInUse(id string, ports []string) *api.Error {
	reason := "There are one or more ports still in use on the network"
	if len(ports) > 0 {
		reason += ", id for these ports is: " + strings.Join(ports, ",")
	}
	return nerr(http.StatusConflict, "NetworkInUse", "Unable to complete operation on network %s. %s.", id, reason)
}

func subnetInUse(id string) *api.Error {
	return nerr(http.StatusConflict, "SubnetInUse",
		"Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id)
}

func ipAlreadyAllocated(ip, subnetID string) *api.Error {
	return nerr(http.StatusConflict, "IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, subnetID)
}

func ipGenerationFailure(networkID string) *api.Error {
	return nerr(http.StatusConflict, "IpAddressGenerationFailure", "No more IP addresses available on network %s.", networkID)
}

func invalidIPForSubnet(ip string) *api.Error {
	return nerr(http.StatusBadRequest, "InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", ip)
}

func invalidIPForNetwork(ip string) *api.Error {
	return nerr(http.StatusBadRequest, "InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", ip)
}

func macInUse(networkID, mac string) *api.Error {
	return nerr(http.StatusConflict, "MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", networkID, mac)
}

func overQuota(resources ...string) *api.Error {
	sort.Strings(resources)
	q := make([]string, len(resources))
	for i, r := range resources {
		q[i] = "'" + r + "'"
	}
	return nerr(http.StatusConflict, "OverQuota", "Quota exceeded for resources: [%s].", strings.Join(q, ", "))
}

func portInUse(portID, networkID, deviceID string) *api.Error {
	return nerr(http.StatusConflict, "PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.",
		portID, networkID, deviceID)
}

func servicePortInUse(portID, reason string) *api.Error {
	return nerr(http.StatusConflict, "ServicePortInUse", "Port %s cannot be deleted directly via the port API: %s.", portID, reason)
}

func externalGatewayForFIPNotFound(netID, subnetID, portID string) *api.Error {
	return nerr(http.StatusNotFound, "ExternalGatewayForFloatingIPNotFound",
		"External network %s is not reachable from subnet %s.  Therefore, cannot associate Port %s with a Floating IP.",
		netID, subnetID, portID)
}

func sgRuleExists(id string) *api.Error {
	return nerr(http.StatusConflict, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", id)
}

func sgInUse(id string) *api.Error {
	return nerr(http.StatusConflict, "SecurityGroupInUse", "Security Group %s in use.", id)
}

func tagNotFound(tag string) *api.Error {
	return nerr(http.StatusNotFound, "TagNotFound", "Tag %s could not be found.", tag)
}
