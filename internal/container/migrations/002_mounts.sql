-- Cinder volumes mounted into containers.
CREATE TABLE container_mounts (
	container_uuid TEXT NOT NULL REFERENCES container_containers(uuid) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	volume_id      TEXT NOT NULL,
	attachment_id  TEXT NOT NULL,
	destination    TEXT NOT NULL,
	block          TEXT NOT NULL DEFAULT '',
	-- made for the container (mount size=N): deleted with it
	auto_created   INTEGER NOT NULL DEFAULT 0,
	-- reserving, attached
	status         TEXT NOT NULL,
	PRIMARY KEY (container_uuid, position)
);
