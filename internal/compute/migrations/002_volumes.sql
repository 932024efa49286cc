-- Volumes attached to servers (Nova's block device mappings of volumes).
CREATE TABLE compute_volume_attachments (
	id                    TEXT PRIMARY KEY,
	server_id             TEXT NOT NULL,
	volume_id             TEXT NOT NULL,
	attachment_id         TEXT NOT NULL,
	device                TEXT NOT NULL,
	block                 TEXT NOT NULL,
	read_only             INTEGER NOT NULL DEFAULT 0,
	tag                   TEXT,
	delete_on_termination INTEGER NOT NULL DEFAULT 0,
	-- attaching, attached, detaching
	status                TEXT NOT NULL,
	created_at            TEXT NOT NULL,
	UNIQUE (server_id, volume_id),
	UNIQUE (server_id, device)
);
