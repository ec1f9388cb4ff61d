-- The tips of tracked branches basinix saw, and per tip the derivations of
-- the attributes that changed there: the branch's history (an attribute's
-- derivation at a commit is its latest record at or before it). Results
-- come from builds, by drvPath.
CREATE TABLE branch_tips (
	repo       TEXT NOT NULL,
	branch     TEXT NOT NULL,
	commit_sha TEXT NOT NULL,
	title      TEXT NOT NULL,
	seen_at    INTEGER NOT NULL,
	PRIMARY KEY (repo, branch, commit_sha)
);
CREATE TABLE attr_history (
	repo       TEXT NOT NULL,
	branch     TEXT NOT NULL,
	commit_sha TEXT NOT NULL,
	system     TEXT NOT NULL,
	attr       TEXT NOT NULL,
	drv_path   TEXT NOT NULL, -- "" when it stopped evaluating
	seen_at    INTEGER NOT NULL,
	PRIMARY KEY (repo, branch, commit_sha, system, attr)
);
CREATE INDEX attr_history_by_attr ON attr_history (repo, branch, system, attr, seen_at);
