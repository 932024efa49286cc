-- Actions of containers already deleted: deleting a container left them
-- (dropRecord deletes them with it now).
DELETE FROM container_actions WHERE container_uuid NOT IN (SELECT uuid FROM container_containers);
