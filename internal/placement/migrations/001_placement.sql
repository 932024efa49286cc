CREATE TABLE placement_providers (
	uuid        TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	generation  INTEGER NOT NULL DEFAULT 0,
	parent_uuid TEXT REFERENCES placement_providers(uuid),
	root_uuid   TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL
);
CREATE TABLE placement_inventories (
	provider_uuid    TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	resource_class   TEXT NOT NULL,
	total            INTEGER NOT NULL,
	reserved         INTEGER NOT NULL DEFAULT 0,
	min_unit         INTEGER NOT NULL DEFAULT 1,
	max_unit         INTEGER NOT NULL,
	step_size        INTEGER NOT NULL DEFAULT 1,
	allocation_ratio REAL NOT NULL DEFAULT 1.0,
	PRIMARY KEY (provider_uuid, resource_class)
);
CREATE TABLE placement_consumers (
	id            TEXT PRIMARY KEY,
	project_id    TEXT NOT NULL,
	user_id       TEXT NOT NULL,
	consumer_type TEXT NOT NULL DEFAULT 'INSTANCE',
	generation    INTEGER NOT NULL DEFAULT 0,
	created_at    TEXT NOT NULL,
	updated_at    TEXT NOT NULL
);
CREATE TABLE placement_allocations (
	consumer_id    TEXT NOT NULL REFERENCES placement_consumers(id) ON DELETE CASCADE,
	provider_uuid  TEXT NOT NULL REFERENCES placement_providers(uuid),
	resource_class TEXT NOT NULL,
	used           INTEGER NOT NULL,
	PRIMARY KEY (consumer_id, provider_uuid, resource_class)
);
CREATE INDEX placement_allocations_provider ON placement_allocations(provider_uuid, resource_class);
CREATE TABLE placement_custom_traits (name TEXT PRIMARY KEY);
CREATE TABLE placement_custom_classes (name TEXT PRIMARY KEY);
CREATE TABLE placement_provider_traits (
	provider_uuid TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	trait         TEXT NOT NULL,
	PRIMARY KEY (provider_uuid, trait)
);
CREATE TABLE placement_provider_aggregates (
	provider_uuid  TEXT NOT NULL REFERENCES placement_providers(uuid) ON DELETE CASCADE,
	aggregate_uuid TEXT NOT NULL,
	PRIMARY KEY (provider_uuid, aggregate_uuid)
);
