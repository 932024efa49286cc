-- Glance's tables. Nullable columns are the ones the API shows as null.
-- Times are UTC "2006-01-02T15:04:05Z" (Glance keeps seconds), so that
-- text order is time order.
CREATE TABLE images (
	id               TEXT PRIMARY KEY,
	name             TEXT,
	status           TEXT NOT NULL,
	visibility       TEXT NOT NULL,
	owner            TEXT,
	disk_format      TEXT,
	container_format TEXT,
	size             INTEGER,
	virtual_size     INTEGER,
	checksum         TEXT,
	os_hash_algo     TEXT,
	os_hash_value    TEXT,
	min_disk         INTEGER NOT NULL DEFAULT 0,
	min_ram          INTEGER NOT NULL DEFAULT 0,
	protected        INTEGER NOT NULL DEFAULT 0,
	os_hidden        INTEGER NOT NULL DEFAULT 0,
	created_at       TEXT NOT NULL,
	updated_at       TEXT NOT NULL,
	-- What the stored bytes were found to be (JSON of image.Format).
	format           TEXT NOT NULL DEFAULT '{}',
	-- Hashes of staged data (status uploading), moved to checksum and
	-- os_hash_value when the import completes.
	staged_checksum  TEXT,
	staged_hash      TEXT
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_created ON images (created_at, id);

CREATE TABLE image_properties (
	image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	name     TEXT NOT NULL,
	value    TEXT NOT NULL,
	PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);

CREATE TABLE image_tags (
	image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	tag      TEXT NOT NULL,
	PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);

CREATE TABLE image_members (
	image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
	member     TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member ON image_members (member, status);

-- Ids of deleted images: Glance keeps deleted rows, so an id is never
-- given to a second image.
CREATE TABLE deleted_images (
	id         TEXT PRIMARY KEY,
	deleted_at TEXT NOT NULL
);
