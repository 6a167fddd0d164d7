-- Backups get an expiry (the runbook's retention) and are compressed after the app serves
-- again: dump_bytes is what pg_dump wrote, size_bytes what the backup takes on disk now,
-- compressed_at when its data files were gzipped (NULL: not yet).
ALTER TABLE backups ADD COLUMN expires_at TEXT;
ALTER TABLE backups ADD COLUMN dump_bytes BIGINT;
ALTER TABLE backups ADD COLUMN compressed_at TEXT;
