-- Evaluations are cached by what determines them: repository, commit,
-- system, config and the evaluator (basinix's walker and Nix version).
CREATE TABLE evaluations (
    id            INTEGER PRIMARY KEY,
    repo          TEXT    NOT NULL,
    commit_sha    TEXT    NOT NULL,
    system        TEXT    NOT NULL,
    config_hash   TEXT    NOT NULL,
    evaluator     TEXT    NOT NULL,
    error_message TEXT,
    error_file    TEXT,
    error_line    INTEGER,
    duration_ms   INTEGER NOT NULL,
    processes     INTEGER NOT NULL,
    created_at    TEXT    NOT NULL,
    UNIQUE (repo, commit_sha, system, config_hash, evaluator)
);

-- One row per attribute; data holds the rest of the attribute as JSON.
CREATE TABLE eval_attrs (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    attr          TEXT    NOT NULL,
    drv_path      TEXT,
    data          TEXT    NOT NULL,
    PRIMARY KEY (evaluation_id, attr)
) WITHOUT ROWID;

CREATE INDEX eval_attrs_drv_path ON eval_attrs (drv_path);

-- passthru.tests of an attribute, evaluated when the attribute needs them.
CREATE TABLE eval_tests (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    attr          TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    PRIMARY KEY (evaluation_id, attr)
) WITHOUT ROWID;
