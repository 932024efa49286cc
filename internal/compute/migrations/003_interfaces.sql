-- Interfaces attached to running servers (os-interface). A boot port's row
-- keeps tag NULL (its tag is the create request's networks[position].tag);
-- an attached port's row has its tag, '' for none. position is the index N
-- of the interface ethN in the server.
ALTER TABLE compute_server_ports ADD COLUMN tag TEXT;
-- attaching, attached, detaching
ALTER TABLE compute_server_ports ADD COLUMN status TEXT NOT NULL DEFAULT 'attached';
