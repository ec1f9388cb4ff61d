-- The result of every derivation basinix built or learnt about, by drvPath:
-- the failure cache Nix does not keep, and what every review reads.
CREATE TABLE builds (
	drv_path    TEXT PRIMARY KEY,
	result      TEXT NOT NULL,              -- success, failure, dependency-failed, timeout
	failed_dep  TEXT NOT NULL DEFAULT '',   -- for dependency-failed: the derivation that failed
	message     TEXT NOT NULL DEFAULT '',
	machine     TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL DEFAULT 0, -- unix milliseconds
	duration_ms INTEGER NOT NULL DEFAULT 0,
	log_path    TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL            -- unix milliseconds
);
