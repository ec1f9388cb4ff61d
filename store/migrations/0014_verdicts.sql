-- A reviewed revision's verdicts, one row per system and attribute it
-- touched (the report keeps the rest: refs, evaluations, errors, labels).
-- The web page, merge, republishing and "failing since" read these.
CREATE TABLE verdicts (
  revision_id INTEGER NOT NULL REFERENCES revisions(id) ON DELETE CASCADE,
  system TEXT NOT NULL,
  attr TEXT NOT NULL,
  change TEXT NOT NULL,
  drv_path TEXT NOT NULL DEFAULT '',
  base_drv_path TEXT NOT NULL DEFAULT '',
  head_result TEXT NOT NULL DEFAULT '',
  base_result TEXT NOT NULL DEFAULT '',
  verdict TEXT NOT NULL,
  failed_dep TEXT NOT NULL DEFAULT '',
  position TEXT NOT NULL DEFAULT '',
  log TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  failing_since TEXT NOT NULL DEFAULT '',
  tests TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (revision_id, system, attr)
);
CREATE INDEX verdicts_attr ON verdicts (attr, system);
