-- An operator's requests to a running fleet run, from another shell or the console:
-- region = a region's name ('pause' | 'stop'), or '*' for the whole run ('cancel').
-- The run polls this table, and clears it when it starts and when it ends.
CREATE TABLE controls (
    region       TEXT PRIMARY KEY,
    action       TEXT NOT NULL,
    requested_at TEXT NOT NULL
);

-- Steps and leases are read into i64 fields (as SQLite's INTEGER is): make them BIGINT here.
ALTER TABLE steps ALTER COLUMN seq TYPE BIGINT, ALTER COLUMN attempt TYPE BIGINT;
ALTER TABLE leases ALTER COLUMN pid TYPE BIGINT;
