-- Every worker that has served the store, for the console anywhere: its host and regions, and
-- when the store last heard from it (store clock). Apps in hand are its live claims.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,                       -- host:pid:nonce, the claims' holder
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    regions      TEXT NOT NULL,                          -- comma-separated
    started_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE INDEX work_items_holder ON work_items (holder, state);
