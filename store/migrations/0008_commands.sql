-- Comment commands received, for the PR page's history.
CREATE TABLE commands (
	id          INTEGER PRIMARY KEY,
	repo        TEXT NOT NULL,
	pr          INTEGER NOT NULL,
	user        TEXT NOT NULL,
	command     TEXT NOT NULL,
	outcome     TEXT NOT NULL,
	received_at INTEGER NOT NULL
);
CREATE INDEX commands_by_pr ON commands (repo, pr, id);
