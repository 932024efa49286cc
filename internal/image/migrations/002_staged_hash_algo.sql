-- The algorithm of staged_hash: the service's hashing algorithm when the
-- data was staged (it may be changed before the import). NULL: sha512,
-- the only one before the setting existed.
ALTER TABLE images ADD COLUMN staged_hash_algo TEXT;
