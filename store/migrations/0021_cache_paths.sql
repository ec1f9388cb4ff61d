-- The store paths basinix uploads to the binary cache (cache.url): queued
-- after a successful build, uploaded with their closure (each path of it
-- a row), each with a lease: live_until is when it stops being needed
-- (0: never, an archived branch's), extended while a branch's latest
-- evaluation or an open PR still has it. `basinix gc` removes what is
-- expired and no live path needs.
CREATE TABLE cache_paths (
  path        TEXT PRIMARY KEY,
  state       TEXT NOT NULL,             -- queued, uploaded
  reason      TEXT NOT NULL DEFAULT '',  -- what last extended the lease: "branch o/r master", "pr o/r#12", "archive o/r master"
  live_until  INTEGER NOT NULL,          -- unix milliseconds, 0: forever
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_try    INTEGER NOT NULL DEFAULT 0,
  error       TEXT NOT NULL DEFAULT '',
  uploaded_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cache_paths_queued ON cache_paths (state, next_try);
