-- How a command came: "comment" or "web" (a logged-in user's button).
ALTER TABLE commands ADD COLUMN via TEXT NOT NULL DEFAULT 'comment';
-- Web sessions of users logged in with GitHub, by the SHA-256 of their
-- cookie (the cookie alone opens one); no GitHub token is kept.
CREATE TABLE sessions (
  id_hash    TEXT PRIMARY KEY,
  login      TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
-- Verdicts counted per revision and system, for the index of PRs.
CREATE TABLE verdict_counts (
  revision_id INTEGER NOT NULL REFERENCES revisions(id) ON DELETE CASCADE,
  system      TEXT NOT NULL,
  verdict     TEXT NOT NULL,
  n           INTEGER NOT NULL,
  PRIMARY KEY (revision_id, system, verdict)
);
INSERT INTO verdict_counts (revision_id, system, verdict, n)
  SELECT revision_id, system, verdict, count(*) FROM verdicts GROUP BY revision_id, system, verdict;
-- Who waits for a derivation: the build page.
CREATE INDEX verdicts_drv ON verdicts (drv_path);
CREATE INDEX verdicts_base_drv ON verdicts (base_drv_path);
CREATE INDEX attr_history_drv ON attr_history (drv_path);
