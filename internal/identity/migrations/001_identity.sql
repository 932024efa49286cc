-- Keystone's tables. IDs are 32-hex UUIDs except the domain "default".
CREATE TABLE domains (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	enabled     INTEGER NOT NULL DEFAULT 1,
	created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX domains_name ON domains (lower(name));

CREATE TABLE projects (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	domain_id   TEXT NOT NULL REFERENCES domains(id),
	parent_id   TEXT REFERENCES projects(id),
	description TEXT NOT NULL DEFAULT '',
	enabled     INTEGER NOT NULL DEFAULT 1,
	extra       TEXT NOT NULL DEFAULT '{}',
	created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX projects_name ON projects (domain_id, lower(name));
CREATE INDEX projects_parent ON projects (parent_id);

CREATE TABLE project_tags (
	project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	tag        TEXT NOT NULL,
	PRIMARY KEY (project_id, tag)
);

CREATE TABLE users (
	id                 TEXT PRIMARY KEY,
	name               TEXT NOT NULL,
	domain_id          TEXT NOT NULL REFERENCES domains(id),
	enabled            INTEGER NOT NULL DEFAULT 1,
	password_hash      TEXT NOT NULL DEFAULT '',
	default_project_id TEXT,
	extra              TEXT NOT NULL DEFAULT '{}',
	options            TEXT NOT NULL DEFAULT '{}',
	created_at         TEXT NOT NULL
);
CREATE UNIQUE INDEX users_name ON users (domain_id, lower(name));

CREATE TABLE groups (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	domain_id   TEXT NOT NULL REFERENCES domains(id),
	description TEXT NOT NULL DEFAULT '',
	created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX groups_name ON groups (domain_id, lower(name));

CREATE TABLE user_groups (
	user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_groups_group ON user_groups (group_id);

-- Roles: domain_id '' for global roles (a domain-specific role names its domain).
CREATE TABLE roles (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	domain_id   TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	options     TEXT NOT NULL DEFAULT '{}',
	created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX roles_name ON roles (domain_id, lower(name));

CREATE TABLE implied_roles (
	prior_role_id   TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	implied_role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	PRIMARY KEY (prior_role_id, implied_role_id)
);

-- Role assignments. actor_type: user or group. target_type: project, domain
-- or system (target_id 'all'). inherited: applies to the target's subtree
-- (a domain's projects, a project's descendants) rather than the target.
CREATE TABLE assignments (
	actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'group')),
	actor_id    TEXT NOT NULL,
	target_type TEXT NOT NULL CHECK (target_type IN ('project', 'domain', 'system')),
	target_id   TEXT NOT NULL,
	role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	inherited   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited)
);
CREATE INDEX assignments_target ON assignments (target_type, target_id);
CREATE INDEX assignments_role ON assignments (role_id);

CREATE TABLE regions (
	id               TEXT PRIMARY KEY,
	description      TEXT NOT NULL DEFAULT '',
	parent_region_id TEXT REFERENCES regions(id)
);

CREATE TABLE services (
	id          TEXT PRIMARY KEY,
	type        TEXT NOT NULL,
	name        TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	enabled     INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE endpoints (
	id         TEXT PRIMARY KEY,
	service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
	interface  TEXT NOT NULL CHECK (interface IN ('public', 'internal', 'admin')),
	region_id  TEXT REFERENCES regions(id),
	url        TEXT NOT NULL,
	enabled    INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE app_credentials (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id   TEXT NOT NULL,
	secret_hash  TEXT NOT NULL,
	description  TEXT NOT NULL DEFAULT '',
	expires_at   TEXT,
	unrestricted INTEGER NOT NULL DEFAULT 0,
	roles        TEXT NOT NULL DEFAULT '[]',
	created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX app_credentials_name ON app_credentials (user_id, name);

-- Revocation events: a token matching every non-empty field, issued at or
-- before issued_before, is revoked.
CREATE TABLE revocation_events (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id       TEXT NOT NULL DEFAULT '',
	project_id    TEXT NOT NULL DEFAULT '',
	domain_id     TEXT NOT NULL DEFAULT '',
	role_id       TEXT NOT NULL DEFAULT '',
	audit_id      TEXT NOT NULL DEFAULT '',
	app_cred_id   TEXT NOT NULL DEFAULT '',
	issued_before TEXT NOT NULL,
	created_at    TEXT NOT NULL
);
