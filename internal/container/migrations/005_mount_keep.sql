-- A volume made for a container that outlives it (a capsule volume with
-- autoRemove false): detached, not deleted, when the container goes.
ALTER TABLE container_mounts ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;
