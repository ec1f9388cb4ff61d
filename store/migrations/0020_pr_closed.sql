-- When a PR was closed (merged or not), so that its outputs stay rooted
-- for a while after and then become collectable. Reopening deletes it.
CREATE TABLE pr_closed (
  repo      TEXT NOT NULL,
  pr        INTEGER NOT NULL,
  closed_at INTEGER NOT NULL, -- unix milliseconds
  PRIMARY KEY (repo, pr)
);
