-- What the downtime prober saw of each app, per probing session (a migrate or a run with
-- --probe): requests answered by the app, by the maintenance page (503), and failed, with the
-- first and last maintenance answer. Updated while the session runs, so a console reads what
-- each app answers right now.
CREATE TABLE probes (
    app                  TEXT NOT NULL,
    session              TEXT NOT NULL,
    answered             BIGINT NOT NULL,
    maintenance          BIGINT NOT NULL,
    failed               BIGINT NOT NULL,
    first_maintenance_at TEXT,
    last_maintenance_at  TEXT,
    last_answer          TEXT,
    last_at              TEXT,
    failures             TEXT NOT NULL,
    PRIMARY KEY (app, session)
);
