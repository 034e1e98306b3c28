"""DuckDB schema of the preference store (the system of record for preference data).

The CHECK lists of closed vocabularies are generated from `prefpipe.vocab`, so a name added there is
accepted here (a store created before keeps the CHECK it was created with: a new name needs a
migration)."""
from prefpipe.vocab import Choice, LabelSource

DECISIVE = ", ".join(f"'{choice}'" for choice in Choice.decisive())

TABLES = f"""
CREATE TABLE IF NOT EXISTS prompts (
    prompt_id   VARCHAR PRIMARY KEY,
    source      VARCHAR NOT NULL,         -- 'embedded' or the file the prompt came from
    category    VARCHAR NOT NULL,
    prompt      VARCHAR NOT NULL,
    meta        VARCHAR,                  -- JSON: the world's hidden facts (answers, tests)
    split       VARCHAR NOT NULL CHECK (split IN ('train', 'heldout'))
);
CREATE TABLE IF NOT EXISTS candidates (
    candidate_id   VARCHAR PRIMARY KEY,
    prompt_id      VARCHAR NOT NULL,
    model_version  VARCHAR NOT NULL,      -- content hash of the policy that generated it
    generation_key VARCHAR NOT NULL,      -- hash of model version + sampling params + seed
    sample_index   INTEGER NOT NULL,
    response       VARCHAR NOT NULL,
    finished       BOOLEAN NOT NULL,
    num_tokens     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id        VARCHAR PRIMARY KEY,
    prompt_id      VARCHAR NOT NULL,
    candidate_a    VARCHAR NOT NULL,
    candidate_b    VARCHAR NOT NULL,
    generation_key VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    label_id    VARCHAR PRIMARY KEY,
    pair_id     VARCHAR NOT NULL,
    source      VARCHAR NOT NULL CHECK (source IN ({LabelSource.sql_in()})),
    annotator   VARCHAR NOT NULL,
    choice      VARCHAR NOT NULL CHECK (choice IN ({Choice.sql_in()})),
    confidence  DOUBLE NOT NULL,
    principle   VARCHAR,
    rationale   VARCHAR,
    created_at  TIMESTAMP DEFAULT current_timestamp,
    shown_order VARCHAR                   -- 'ab' | 'ba': response shown first (human labels)
);
ALTER TABLE labels ADD COLUMN IF NOT EXISTS shown_order VARCHAR;
CREATE TABLE IF NOT EXISTS annotators (
    annotator_id VARCHAR PRIMARY KEY,
    token_sha256 VARCHAR NOT NULL UNIQUE,   -- only the hash of a sign-in token is stored
    is_admin     BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS sessions (
    session_sha256 VARCHAR PRIMARY KEY,     -- hash of the random value in the browser's cookie
    annotator_id   VARCHAR NOT NULL,
    token_sha256   VARCHAR NOT NULL,        -- the token signed in with: re-issuing it ends the session
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS annotation_tasks (
    task_id      VARCHAR PRIMARY KEY,       -- hash of pair_id + annotator_id
    pair_id      VARCHAR NOT NULL,
    annotator_id VARCHAR NOT NULL,
    position     INTEGER NOT NULL,          -- order in the annotator's queue
    shown_order  VARCHAR NOT NULL CHECK (shown_order IN ('ab', 'ba')),
    gold_choice  VARCHAR CHECK (gold_choice IN ({DECISIVE})),  -- set on gold (known-answer) items
    created_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS runs (
    run_id      VARCHAR NOT NULL,
    stage       VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,
    params      VARCHAR,
    metrics     VARCHAR,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);
"""
