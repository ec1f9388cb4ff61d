-- Evaluations are cached by what determines them: repository, commit,
-- system, config and the evaluator (basinix's walker and Nix version).
-- attrs holds every attribute (name, drvPath, error) as gzip'd JSON: one
-- write and one read per evaluation, however large the package set.
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
    attr_count    INTEGER NOT NULL,
    attrs         BLOB    NOT NULL,
    duration_ms   INTEGER NOT NULL,
    processes     INTEGER NOT NULL,
    created_at    TEXT    NOT NULL,
    UNIQUE (repo, commit_sha, system, config_hash, evaluator)
);

-- What reviews learn later about single attributes of an evaluation:
-- kind 'details' (meta, outputs, passthru.tests) and kind 'explain' (the
-- message of a throw).
CREATE TABLE eval_extras (
    evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    attr          TEXT    NOT NULL,
    data          TEXT    NOT NULL,
    PRIMARY KEY (evaluation_id, kind, attr)
) WITHOUT ROWID;
