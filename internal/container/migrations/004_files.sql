-- Files injected into containers (Zun's mounts of type bind): the bytes the
-- client sent, given to the container at destination.
CREATE TABLE container_files (
	container_uuid TEXT NOT NULL REFERENCES container_containers(uuid) ON DELETE CASCADE,
	position       INTEGER NOT NULL,
	destination    TEXT NOT NULL,
	data           BLOB NOT NULL,
	PRIMARY KEY (container_uuid, position)
);
