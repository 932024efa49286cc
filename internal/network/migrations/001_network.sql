-- Neutron v2.0: networks, subnets, ports and their addresses, security
-- groups, routers, floating IPs, tags and quotas. Times are RFC 3339 text
-- with microseconds (UTC); lists and maps are JSON text.

CREATE TABLE networks (
	id                    TEXT PRIMARY KEY,
	project_id            TEXT NOT NULL,
	name                  TEXT NOT NULL DEFAULT '',
	description           TEXT NOT NULL DEFAULT '',
	admin_state_up        BOOLEAN NOT NULL,
	shared                BOOLEAN NOT NULL,
	external              BOOLEAN NOT NULL,
	mtu                   INTEGER NOT NULL,
	status                TEXT NOT NULL,
	port_security_enabled BOOLEAN NOT NULL,
	network_type          TEXT NOT NULL,
	physical_network      TEXT,
	segmentation_id       INTEGER,
	az_hints              TEXT NOT NULL DEFAULT '[]',
	created_at            TEXT NOT NULL,
	updated_at            TEXT NOT NULL,
	revision_number       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX networks_project ON networks (project_id);
CREATE UNIQUE INDEX networks_segment ON networks (network_type, coalesce(physical_network, ''), segmentation_id)
	WHERE segmentation_id IS NOT NULL;

CREATE TABLE subnets (
	id                TEXT PRIMARY KEY,
	project_id        TEXT NOT NULL,
	network_id        TEXT NOT NULL REFERENCES networks (id),
	name              TEXT NOT NULL DEFAULT '',
	description       TEXT NOT NULL DEFAULT '',
	ip_version        INTEGER NOT NULL,
	cidr              TEXT NOT NULL,
	gateway_ip        TEXT,
	enable_dhcp       BOOLEAN NOT NULL,
	ipv6_ra_mode      TEXT,
	ipv6_address_mode TEXT,
	subnetpool_id     TEXT,
	allocation_pools  TEXT NOT NULL DEFAULT '[]',
	dns_nameservers   TEXT NOT NULL DEFAULT '[]',
	host_routes       TEXT NOT NULL DEFAULT '[]',
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL,
	revision_number   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE INDEX subnets_project ON subnets (project_id);

CREATE TABLE ports (
	id                    TEXT PRIMARY KEY,
	project_id            TEXT NOT NULL,
	network_id            TEXT NOT NULL REFERENCES networks (id),
	name                  TEXT NOT NULL DEFAULT '',
	description           TEXT NOT NULL DEFAULT '',
	admin_state_up        BOOLEAN NOT NULL,
	mac_address           TEXT NOT NULL,
	device_id             TEXT NOT NULL DEFAULT '',
	device_owner          TEXT NOT NULL DEFAULT '',
	status                TEXT NOT NULL,
	port_security_enabled BOOLEAN NOT NULL,
	host_id               TEXT NOT NULL DEFAULT '',
	profile               TEXT NOT NULL DEFAULT '{}',
	vnic_type             TEXT NOT NULL DEFAULT 'normal',
	allowed_address_pairs TEXT NOT NULL DEFAULT '[]',
	created_at            TEXT NOT NULL,
	updated_at            TEXT NOT NULL,
	revision_number       INTEGER NOT NULL DEFAULT 0,
	UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_host ON ports (host_id);
CREATE INDEX ports_project ON ports (project_id);

-- The IPAM table (package ipam): the primary key makes a double
-- allocation impossible.
CREATE TABLE ip_allocations (
	subnet_id  TEXT NOT NULL REFERENCES subnets (id),
	ip_address TEXT NOT NULL,
	ip_key     TEXT NOT NULL,
	port_id    TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
	network_id TEXT NOT NULL,
	PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
CREATE INDEX ip_allocations_key ON ip_allocations (subnet_id, ip_key);

CREATE TABLE security_groups (
	id              TEXT PRIMARY KEY,
	project_id      TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	description     TEXT NOT NULL DEFAULT '',
	is_default      BOOLEAN NOT NULL DEFAULT FALSE,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	revision_number INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE UNIQUE INDEX security_groups_default ON security_groups (project_id) WHERE is_default;

CREATE TABLE security_group_rules (
	id                TEXT PRIMARY KEY,
	project_id        TEXT NOT NULL,
	security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
	direction         TEXT NOT NULL,
	ethertype         TEXT NOT NULL,
	protocol          TEXT,
	port_range_min    INTEGER,
	port_range_max    INTEGER,
	remote_ip_prefix  TEXT,
	remote_group_id   TEXT REFERENCES security_groups (id) ON DELETE CASCADE,
	description       TEXT NOT NULL DEFAULT '',
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL,
	revision_number   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);

CREATE TABLE port_security_groups (
	port_id           TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
	security_group_id TEXT NOT NULL REFERENCES security_groups (id),
	PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);

CREATE TABLE routers (
	id              TEXT PRIMARY KEY,
	project_id      TEXT NOT NULL,
	name            TEXT NOT NULL DEFAULT '',
	description     TEXT NOT NULL DEFAULT '',
	admin_state_up  BOOLEAN NOT NULL,
	status          TEXT NOT NULL,
	gw_port_id      TEXT REFERENCES ports (id),
	enable_snat     BOOLEAN NOT NULL DEFAULT TRUE,
	routes          TEXT NOT NULL DEFAULT '[]',
	az_hints        TEXT NOT NULL DEFAULT '[]',
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	revision_number INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX routers_project ON routers (project_id);

CREATE TABLE floatingips (
	id                  TEXT PRIMARY KEY,
	project_id          TEXT NOT NULL,
	floating_network_id TEXT NOT NULL REFERENCES networks (id),
	floating_ip_address TEXT NOT NULL,
	floating_port_id    TEXT NOT NULL REFERENCES ports (id),
	fixed_port_id       TEXT REFERENCES ports (id),
	fixed_ip_address    TEXT,
	router_id           TEXT REFERENCES routers (id),
	status              TEXT NOT NULL,
	description         TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	updated_at          TEXT NOT NULL,
	revision_number     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (floating_network_id, floating_ip_address)
);
CREATE INDEX floatingips_project ON floatingips (project_id);
CREATE INDEX floatingips_router ON floatingips (router_id);
CREATE UNIQUE INDEX floatingips_fixed ON floatingips (floating_network_id, fixed_port_id, fixed_ip_address)
	WHERE fixed_port_id IS NOT NULL;

CREATE TABLE tags (
	resource    TEXT NOT NULL,
	resource_id TEXT NOT NULL,
	tag         TEXT NOT NULL,
	PRIMARY KEY (resource, resource_id, tag)
);

CREATE TABLE quotas (
	project_id TEXT NOT NULL,
	resource   TEXT NOT NULL,
	hard_limit INTEGER NOT NULL,
	PRIMARY KEY (project_id, resource)
);
