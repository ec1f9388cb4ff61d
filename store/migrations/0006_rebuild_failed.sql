-- A re-run asked by `@basinix rebuild` builds the failed derivations again.
ALTER TABLE revisions ADD COLUMN rebuild_failed INTEGER NOT NULL DEFAULT 0;
