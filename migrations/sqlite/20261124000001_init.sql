-- pgshift control store, SQLite dialect. Timestamps are RFC 3339 text in UTC.

-- One row per inventory app: where it is in its migration, and what the platform shows.
CREATE TABLE apps (
    name            TEXT PRIMARY KEY,
    region          TEXT NOT NULL,
    environment     TEXT NOT NULL,
    customer        TEXT NOT NULL,
    libpq           TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',   -- pending|running|migrated|failed|rolled_back|excluded
    paused          INTEGER NOT NULL DEFAULT 0,
    current_service TEXT,                               -- service instance id the app uses now
    needs_rebuild   INTEGER NOT NULL DEFAULT 0,         -- image must be rebuilt (libpq < 10)
    updated_at      TEXT NOT NULL
);
CREATE INDEX apps_region_state ON apps (region, state);

-- A run: one `migrate`, `run` or `retry`, with its runbook and parameters.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    runbook     TEXT NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}',             -- JSON
    status      TEXT NOT NULL DEFAULT 'running',        -- running|done|failed|cancelled
    started_at  TEXT NOT NULL,
    finished_at TEXT
);

-- One step of one app's step machine in a run; written before and after the work.
CREATE TABLE steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      INTEGER NOT NULL REFERENCES runs(id),
    app         TEXT NOT NULL REFERENCES apps(name),
    seq         INTEGER NOT NULL,
    operation   TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',        -- pending|running|done|failed|rolled_back
    attempt     INTEGER NOT NULL DEFAULT 1,
    started_at  TEXT,
    finished_at TEXT,
    params      TEXT NOT NULL DEFAULT '{}',             -- JSON: the step as the runbook gave it
    detail      TEXT,                                   -- JSON: what the step produced, for resume
    UNIQUE (run_id, app, seq, attempt)
);
CREATE INDEX steps_app ON steps (app, run_id);

CREATE TABLE step_logs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    step_id INTEGER NOT NULL REFERENCES steps(id),
    at      TEXT NOT NULL,
    stream  TEXT NOT NULL,                              -- stdout|stderr|pgshift
    line    TEXT NOT NULL
);
CREATE INDEX step_logs_step ON step_logs (step_id, id);

CREATE TABLE failures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    step_id      INTEGER REFERENCES steps(id),
    app          TEXT NOT NULL REFERENCES apps(name),
    region       TEXT NOT NULL,
    class        TEXT NOT NULL,                         -- stable id from FAILURES.md
    matched      TEXT NOT NULL DEFAULT '[]',            -- JSON [{log_id, line, start, end}]
    explanation  TEXT NOT NULL DEFAULT '',
    remediations TEXT NOT NULL DEFAULT '[]',            -- JSON
    status       TEXT NOT NULL DEFAULT 'open',          -- open|retried|resolved|manual
    created_at   TEXT NOT NULL,
    resolved_at  TEXT
);
CREATE INDEX failures_open ON failures (status, class);

CREATE TABLE backups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app         TEXT NOT NULL REFERENCES apps(name),
    service_id  TEXT NOT NULL,
    run_id      INTEGER REFERENCES runs(id),
    server      TEXT NOT NULL,
    database    TEXT NOT NULL,
    path        TEXT NOT NULL,
    format      TEXT NOT NULL,                          -- custom|directory
    size_bytes  INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    notes       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (app, run_id)
);

-- Who is migrating an app right now; a second process must not.
CREATE TABLE leases (
    app         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,                          -- host:pid:nonce
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
