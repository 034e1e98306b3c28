"""DuckDB schema of the preference store (the system of record for preference data).

The CHECK lists of closed vocabularies are generated from `prefpipe.vocab`, so a name added there is
accepted here (a store created before keeps the CHECK it was created with: a new name needs a
migration).

Every statement is idempotent (CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS), so opening a store
created before a table existed adds it: that is the whole migration of the rounds registry."""
from prefpipe.store.registry import RoundStatus
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
ALTER TABLE pairs ADD COLUMN IF NOT EXISTS round INTEGER;   -- the round that made the pair (lineage)
CREATE TABLE IF NOT EXISTS rounds (
    round             INTEGER PRIMARY KEY,
    status            VARCHAR NOT NULL CHECK (status IN ({RoundStatus.sql_in()})),
    generator_version VARCHAR,            -- the model version sampled from (NULL: the SFT model)
    generator_hash    VARCHAR,
    labels_digest     VARCHAR,            -- sha256 over the human labels the round has seen
    labels_count      INTEGER,            -- how many human labels that digest covers
    new_prompts       INTEGER,
    new_labels        INTEGER,
    reason            VARCHAR,            -- why the round was due
    published_version VARCHAR,
    message           VARCHAR,
    flow_run_id       VARCHAR,
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP
);
CREATE TABLE IF NOT EXISTS round_prompts (   -- the train prompts known at each round
    round     INTEGER NOT NULL,
    prompt_id VARCHAR NOT NULL,
    PRIMARY KEY (round, prompt_id)
);
CREATE TABLE IF NOT EXISTS round_pairs (     -- every pair of a round with its final label
    round      INTEGER NOT NULL,
    pair_id    VARCHAR NOT NULL,
    prompt_id  VARCHAR NOT NULL,
    prompt     VARCHAR NOT NULL,
    category   VARCHAR NOT NULL,
    response_a VARCHAR NOT NULL,
    finished_a BOOLEAN NOT NULL,
    response_b VARCHAR NOT NULL,
    finished_b BOOLEAN NOT NULL,
    choice     VARCHAR,
    source     VARCHAR,
    confidence DOUBLE,
    PRIMARY KEY (round, pair_id)
);
CREATE TABLE IF NOT EXISTS model_versions (
    version         VARCHAR PRIMARY KEY,  -- r<round>-<model hash[:8]>
    round           INTEGER,
    parent_version  VARCHAR,              -- the version the round sampled from (NULL: SFT)
    model_hash      VARCHAR NOT NULL,
    params_sha256   VARCHAR,
    git_revision    VARCHAR,
    dvc_lock_sha256 VARCHAR,
    snapshot_sha256 VARCHAR,
    label_counts    VARCHAR,              -- JSON: labels by source
    metrics         VARCHAR,              -- JSON
    gates           VARCHAR,              -- JSON: gate verdicts
    artifact_uri    VARCHAR,
    params_yaml     VARCHAR,
    dvc_lock        VARCHAR,
    created_at      TIMESTAMP NOT NULL,
    remote_uri      VARCHAR               -- s3://BUCKET/PREFIX/<version>/ once uploaded (artifact store)
);
ALTER TABLE model_versions ADD COLUMN IF NOT EXISTS remote_uri VARCHAR;
CREATE TABLE IF NOT EXISTS registry_pointers (
    name       VARCHAR PRIMARY KEY,       -- 'current'
    version    VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
"""
