CREATE TABLE volume_types (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	description TEXT,
	is_public   INTEGER NOT NULL DEFAULT 1,
	created_at  TEXT NOT NULL,
	updated_at  TEXT
);
CREATE TABLE volume_type_specs (
	type_id TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
	key     TEXT NOT NULL,
	value   TEXT NOT NULL,
	PRIMARY KEY (type_id, key)
);
CREATE TABLE volume_type_access (
	type_id    TEXT NOT NULL REFERENCES volume_types(id) ON DELETE CASCADE,
	project_id TEXT NOT NULL,
	PRIMARY KEY (type_id, project_id)
);
CREATE TABLE volume_volumes (
	id            TEXT PRIMARY KEY,
	seq           INTEGER NOT NULL UNIQUE,
	project_id    TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	name          TEXT,
	description   TEXT,
	size          INTEGER NOT NULL,
	status        TEXT NOT NULL,
	-- the operation in flight that a restart resumes: create, extend, delete, backup, restore
	task          TEXT,
	type_id       TEXT NOT NULL,
	az            TEXT NOT NULL,
	bootable      INTEGER NOT NULL DEFAULT 0,
	readonly      INTEGER NOT NULL DEFAULT 0,
	multiattach   INTEGER NOT NULL DEFAULT 0,
	source_volid  TEXT,
	snapshot_id   TEXT,
	image_id      TEXT,
	image_meta    TEXT,
	-- the size asked of an extend in flight, and the status it returns to
	new_size      INTEGER,
	prev_status   TEXT,
	error         TEXT,
	created_at    TEXT NOT NULL,
	updated_at    TEXT
);
CREATE INDEX volume_volumes_project ON volume_volumes(project_id, seq);
CREATE TABLE volume_metadata (
	volume_id TEXT NOT NULL REFERENCES volume_volumes(id) ON DELETE CASCADE,
	key       TEXT NOT NULL,
	value     TEXT NOT NULL,
	PRIMARY KEY (volume_id, key)
);
CREATE TABLE volume_attachments (
	id          TEXT PRIMARY KEY,
	volume_id   TEXT NOT NULL REFERENCES volume_volumes(id) ON DELETE CASCADE,
	project_id  TEXT NOT NULL,
	server_id   TEXT NOT NULL,
	host        TEXT,
	device      TEXT,
	mode        TEXT NOT NULL DEFAULT 'rw',
	-- reserved, attaching, attached, detaching
	status      TEXT NOT NULL,
	connector   TEXT,
	created_at  TEXT NOT NULL,
	attached_at TEXT,
	updated_at  TEXT
);
CREATE INDEX volume_attachments_volume ON volume_attachments(volume_id);
CREATE TABLE volume_snapshots (
	id          TEXT PRIMARY KEY,
	seq         INTEGER NOT NULL UNIQUE,
	project_id  TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	volume_id   TEXT NOT NULL,
	name        TEXT,
	description TEXT,
	size        INTEGER NOT NULL,
	status      TEXT NOT NULL,
	task        TEXT,
	created_at  TEXT NOT NULL,
	updated_at  TEXT
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots(volume_id);
CREATE TABLE volume_snapshot_metadata (
	snapshot_id TEXT NOT NULL REFERENCES volume_snapshots(id) ON DELETE CASCADE,
	key         TEXT NOT NULL,
	value       TEXT NOT NULL,
	PRIMARY KEY (snapshot_id, key)
);
CREATE TABLE volume_backups (
	id             TEXT PRIMARY KEY,
	seq            INTEGER NOT NULL UNIQUE,
	project_id     TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	volume_id      TEXT NOT NULL,
	snapshot_id    TEXT,
	name           TEXT,
	description    TEXT,
	size           INTEGER NOT NULL,
	object_count   INTEGER NOT NULL DEFAULT 0,
	status         TEXT NOT NULL,
	task           TEXT,
	fail_reason    TEXT,
	container      TEXT NOT NULL,
	restore_volume TEXT,
	created_at     TEXT NOT NULL,
	updated_at     TEXT,
	data_timestamp TEXT NOT NULL
);
CREATE TABLE volume_quotas (
	project_id TEXT NOT NULL,
	resource   TEXT NOT NULL,
	hard_limit INTEGER NOT NULL,
	PRIMARY KEY (project_id, resource)
);
