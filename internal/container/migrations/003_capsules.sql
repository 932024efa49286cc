-- Capsules: pods of containers sharing one network namespace (the first
-- container's, which holds the capsule's ports).
CREATE TABLE container_capsules (
	uuid           TEXT PRIMARY KEY,
	seq            INTEGER NOT NULL UNIQUE,
	name           TEXT,
	project_id     TEXT NOT NULL,
	user_id        TEXT NOT NULL,
	labels         TEXT NOT NULL,       -- JSON object
	annotations    TEXT NOT NULL,       -- JSON object
	restart_policy TEXT NOT NULL,       -- JSON {"Name", "MaximumRetryCount"}
	cpu            REAL NOT NULL,       -- the sum of its containers'
	memory         INTEGER NOT NULL,    -- MiB, the sum of its containers'
	host           TEXT,
	-- the work in flight a restart resumes: create, delete
	task           TEXT,
	created_at     TEXT NOT NULL,
	updated_at     TEXT
);
CREATE INDEX container_capsules_project ON container_capsules(project_id, seq);
-- A capsule's containers are containers of their own (logs, exec, top by
-- uuid) that the containers list leaves out.
ALTER TABLE container_containers ADD COLUMN capsule_id TEXT;
CREATE INDEX container_containers_capsule ON container_containers(capsule_id);
