-- Every piece of work other than a PR revision's review is a row here
-- before anything is done about it ("persist, then run"): a webhook only
-- inserts one, workers take them, and a restart resumes every unfinished
-- one. Jobs with the same serial run one at a time, in the order they were
-- added (a branch's tips); step counts the steps of a job already done, so
-- that a resumed job does not do them again.
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  serial TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'queued',
  payload TEXT NOT NULL,
  step INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_queue ON jobs (state, id);
CREATE INDEX jobs_serial ON jobs (serial, state, id);
