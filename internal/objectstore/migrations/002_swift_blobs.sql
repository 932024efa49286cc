-- The bytes of small objects, kept in the database rather than in files,
-- written in the transaction that commits their row (see inline.go). A
-- row's swift_objects.file names its blob here when it starts with "db/";
-- any other file is DataDir/objects/<file>. Deleting or replacing the row
-- deletes the blob in the same transaction. Listings never read this table.
CREATE TABLE swift_blobs (
    file TEXT PRIMARY KEY,                  -- swift_objects.file: "db/" + a file name
    data BLOB NOT NULL                      -- the object's bytes (swift_objects.stored of them)
);
