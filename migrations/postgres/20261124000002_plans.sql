-- Saved plans: the batches of a night, editable before the run.
CREATE TABLE plans (
    id         BIGSERIAL PRIMARY KEY,
    created_at TEXT NOT NULL,
    params     TEXT NOT NULL,                           -- JSON PlanParams
    body       TEXT NOT NULL                            -- JSON Plan
);
