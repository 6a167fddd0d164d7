-- Regional workers (issue #16): the work of a fleet run, handed out to workers on any host.
-- Times here are milliseconds since the epoch on the STORE's clock (workers' clocks may
-- disagree; the store is the one clock every lease is judged by).

-- A region's concurrency for one fleet run: at most `concurrency` unexpired claims at once,
-- across all workers. Its row is also the claim's lock: a claimer updates it first, so two
-- claimers of one region take turns and each counts the live claims after the other's commit.
CREATE TABLE work_regions (
    fleet_run     BIGINT NOT NULL REFERENCES runs(id),
    region        TEXT NOT NULL,
    concurrency   BIGINT NOT NULL CHECK (concurrency > 0),
    last_claim_ms BIGINT,
    PRIMARY KEY (fleet_run, region)
);

-- One app of a fleet run. `state`: queued | claimed | done | failed. A claimed item carries its
-- lease: holder, fencing token and expiry; an expired claim is taken over by the next claimer
-- of its region with a new, higher token.
CREATE TABLE work_items (
    fleet_run  BIGINT NOT NULL,
    app        TEXT NOT NULL,
    region     TEXT NOT NULL,
    seq        BIGINT NOT NULL,                          -- the plan's order within the run
    state      TEXT NOT NULL DEFAULT 'queued',
    holder     TEXT,
    token      BIGINT,
    expires_ms BIGINT,
    attempts   BIGINT NOT NULL DEFAULT 0,
    fenced_ms  BIGINT,                                   -- last side effect that passed its fence
    PRIMARY KEY (fleet_run, app),
    FOREIGN KEY (fleet_run, region) REFERENCES work_regions (fleet_run, region)
);
CREATE INDEX work_items_claimable ON work_items (fleet_run, region, state, seq);
CREATE UNIQUE INDEX work_items_token ON work_items (app, token);

-- Each app's fencing token: only ever incremented, across every fleet run, so a token names
-- one claim of one app for all time and a stale holder can never match a newer claim.
CREATE TABLE fences (
    app   TEXT PRIMARY KEY,
    token BIGINT NOT NULL
);
