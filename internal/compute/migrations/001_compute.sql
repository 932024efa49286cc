CREATE TABLE compute_flavors (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	vcpus       INTEGER NOT NULL,
	ram         INTEGER NOT NULL,
	disk        INTEGER NOT NULL,
	ephemeral   INTEGER NOT NULL DEFAULT 0,
	swap        INTEGER NOT NULL DEFAULT 0,
	rxtx_factor REAL NOT NULL DEFAULT 1.0,
	is_public   INTEGER NOT NULL DEFAULT 1,
	disabled    INTEGER NOT NULL DEFAULT 0,
	description TEXT,
	created_at  TEXT NOT NULL
);
CREATE TABLE compute_flavor_extra_specs (
	flavor_id TEXT NOT NULL REFERENCES compute_flavors(id) ON DELETE CASCADE,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (flavor_id, key)
);
CREATE TABLE compute_flavor_access (
	flavor_id  TEXT NOT NULL REFERENCES compute_flavors(id) ON DELETE CASCADE,
	project_id TEXT NOT NULL,
	PRIMARY KEY (flavor_id, project_id)
);
CREATE TABLE compute_keypairs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id     TEXT NOT NULL,
	name        TEXT NOT NULL,
	type        TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	UNIQUE (user_id, name)
);
CREATE TABLE compute_quotas (
	project_id TEXT NOT NULL,
	resource   TEXT NOT NULL,
	hard_limit INTEGER NOT NULL,
	PRIMARY KEY (project_id, resource)
);
CREATE TABLE compute_hosts (
	id                 INTEGER PRIMARY KEY AUTOINCREMENT,
	uuid               TEXT NOT NULL UNIQUE,
	service_uuid       TEXT NOT NULL UNIQUE,
	name               TEXT NOT NULL UNIQUE,
	vcpus              INTEGER NOT NULL,
	memory_mb          INTEGER NOT NULL,
	disk_gb            INTEGER NOT NULL,
	host_ip            TEXT NOT NULL DEFAULT '',
	hypervisor_type    TEXT NOT NULL,
	hypervisor_version INTEGER NOT NULL DEFAULT 1,
	disabled           INTEGER NOT NULL DEFAULT 0,
	disabled_reason    TEXT,
	forced_down        INTEGER NOT NULL DEFAULT 0,
	created_at         TEXT NOT NULL,
	updated_at         TEXT NOT NULL
);
CREATE TABLE compute_servers (
	id              TEXT PRIMARY KEY,
	seq             INTEGER NOT NULL UNIQUE,
	name            TEXT NOT NULL,
	project_id      TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	image_id        TEXT NOT NULL,
	flavor_id       TEXT NOT NULL,
	flavor          TEXT NOT NULL,
	host            TEXT NOT NULL DEFAULT '',
	az              TEXT NOT NULL,
	pinned_az       TEXT,
	vm_state        TEXT NOT NULL,
	task_state      TEXT,
	power_state     INTEGER NOT NULL DEFAULT 0,
	key_name        TEXT,
	key_data        TEXT,
	user_data       TEXT,
	config_drive    TEXT NOT NULL DEFAULT '',
	access_ipv4     TEXT NOT NULL DEFAULT '',
	access_ipv6     TEXT NOT NULL DEFAULT '',
	description     TEXT,
	hostname        TEXT NOT NULL,
	locked          INTEGER NOT NULL DEFAULT 0,
	locked_reason   TEXT,
	launch_index    INTEGER NOT NULL DEFAULT 0,
	reservation_id  TEXT NOT NULL,
	fault           TEXT,
	requested       TEXT NOT NULL,
	security_groups TEXT NOT NULL,
	group_id        TEXT,
	generation      INTEGER NOT NULL DEFAULT 0,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	launched_at     TEXT,
	terminated_at   TEXT,
	deleted         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX compute_servers_project ON compute_servers(project_id, deleted);
CREATE INDEX compute_servers_host ON compute_servers(host, deleted);
CREATE TABLE compute_server_metadata (
	server_id TEXT NOT NULL REFERENCES compute_servers(id) ON DELETE CASCADE,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (server_id, key)
);
CREATE TABLE compute_server_tags (
	server_id TEXT NOT NULL REFERENCES compute_servers(id) ON DELETE CASCADE,
	tag       TEXT NOT NULL,
	PRIMARY KEY (server_id, tag)
);
CREATE TABLE compute_server_ports (
	server_id    TEXT NOT NULL REFERENCES compute_servers(id) ON DELETE CASCADE,
	port_id      TEXT NOT NULL,
	position     INTEGER NOT NULL,
	network_id   TEXT NOT NULL,
	network_name TEXT NOT NULL,
	mac          TEXT NOT NULL,
	ips          TEXT NOT NULL,
	owned        INTEGER NOT NULL,
	PRIMARY KEY (server_id, port_id)
);
CREATE TABLE compute_server_groups (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	project_id TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	policy     TEXT NOT NULL,
	rules      TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE compute_server_group_members (
	group_id  TEXT NOT NULL REFERENCES compute_server_groups(id) ON DELETE CASCADE,
	server_id TEXT NOT NULL,
	PRIMARY KEY (group_id, server_id)
);
CREATE TABLE compute_instance_actions (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	server_id   TEXT NOT NULL,
	request_id  TEXT NOT NULL,
	action      TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	project_id  TEXT NOT NULL,
	start_time  TEXT NOT NULL,
	finish_time TEXT,
	message     TEXT,
	host        TEXT NOT NULL DEFAULT '',
	result      TEXT,
	updated_at  TEXT NOT NULL
);
CREATE INDEX compute_instance_actions_server ON compute_instance_actions(server_id);
