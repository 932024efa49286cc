-- A capsule's init containers: run to completion, one after the other,
-- before its other containers start.
ALTER TABLE container_containers ADD COLUMN capsule_init INTEGER NOT NULL DEFAULT 0;
