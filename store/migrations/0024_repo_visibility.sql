-- Whether a repository is private, as its webhooks say: its pages are
-- then its readers' only (unknown repositories count as private).
CREATE TABLE repos (
  repo       TEXT PRIMARY KEY,
  private    INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
