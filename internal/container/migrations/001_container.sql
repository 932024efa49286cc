CREATE TABLE container_containers (
	uuid            TEXT PRIMARY KEY,
	seq             INTEGER NOT NULL UNIQUE,
	name            TEXT NOT NULL,
	project_id      TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	image           TEXT NOT NULL,      -- as the user named it
	image_id        TEXT NOT NULL,      -- the Glance image
	command         TEXT NOT NULL,      -- JSON list
	entrypoint      TEXT NOT NULL,      -- JSON list
	workdir         TEXT,
	environment     TEXT NOT NULL,      -- JSON object
	labels          TEXT NOT NULL,      -- JSON object
	cpu             REAL,
	memory          INTEGER,            -- MiB
	disk            INTEGER,
	restart_policy  TEXT NOT NULL,      -- JSON {"Name", "MaximumRetryCount"}
	restart_count   INTEGER NOT NULL DEFAULT 0,
	auto_remove     INTEGER NOT NULL DEFAULT 0,
	auto_heal       INTEGER NOT NULL DEFAULT 0,
	interactive     INTEGER NOT NULL DEFAULT 0,
	tty             INTEGER NOT NULL DEFAULT 0,
	hostname        TEXT,
	host            TEXT,
	az              TEXT NOT NULL,
	status          TEXT NOT NULL,
	status_reason   TEXT,
	status_detail   TEXT,
	task_state      TEXT,
	-- the work in flight a restart resumes: create, start, stop, delete, ...
	task            TEXT,
	run             INTEGER NOT NULL DEFAULT 0,
	-- stopped by the user (stop, kill): a restart policy does not restart it
	user_stopped    INTEGER NOT NULL DEFAULT 0,
	exit_code       INTEGER,
	security_groups TEXT NOT NULL,      -- JSON list of names
	networks        TEXT NOT NULL,      -- JSON list of requested networks
	started_at      TEXT,
	finished_at     TEXT,
	created_at      TEXT NOT NULL,
	updated_at      TEXT
);
CREATE INDEX container_containers_project ON container_containers(project_id, seq);
CREATE TABLE container_ports (
	container_uuid TEXT NOT NULL REFERENCES container_containers(uuid) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	port_id        TEXT NOT NULL,
	network_id     TEXT NOT NULL,
	owned          INTEGER NOT NULL,    -- made for the container (deleted with it)
	addresses      TEXT NOT NULL,       -- JSON: [{"addr", "version", "subnet_id"}]
	mac            TEXT NOT NULL,
	PRIMARY KEY (container_uuid, port_id)
);
CREATE TABLE container_actions (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	container_uuid TEXT NOT NULL,
	request_id     TEXT NOT NULL,
	action         TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	project_id     TEXT NOT NULL,
	start_time     TEXT NOT NULL,
	finish_time    TEXT,
	message        TEXT
);
CREATE INDEX container_actions_uuid ON container_actions(container_uuid);
CREATE TABLE container_quotas (
	project_id TEXT NOT NULL,
	resource   TEXT NOT NULL,
	hard_limit INTEGER NOT NULL,
	PRIMARY KEY (project_id, resource)
);
