-- GitHub deliveries seen, so a redelivered webhook is handled once.
CREATE TABLE deliveries (
	id          TEXT PRIMARY KEY,
	event       TEXT NOT NULL,
	received_at INTEGER NOT NULL
);

-- A revision is one PR head merged onto its target branch: the jobset.
CREATE TABLE revisions (
	id              INTEGER PRIMARY KEY,
	repo            TEXT NOT NULL,    -- owner/name
	installation_id INTEGER NOT NULL,
	clone_url       TEXT NOT NULL,
	pr              INTEGER NOT NULL,
	head_sha        TEXT NOT NULL,
	base_ref        TEXT NOT NULL,
	state           TEXT NOT NULL,    -- queued, evaluating, building, done, superseded, cancelled, failed
	error           TEXT NOT NULL DEFAULT '',
	report          BLOB,             -- the report JSON, once evaluated
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (repo, pr, head_sha)
);
CREATE INDEX revisions_by_state ON revisions (state, created_at);

-- The check runs of a revision, so a restart updates them instead of
-- creating them again.
CREATE TABLE check_runs (
	revision_id INTEGER NOT NULL REFERENCES revisions (id),
	name        TEXT NOT NULL,
	github_id   INTEGER NOT NULL,
	PRIMARY KEY (revision_id, name)
);
