-- A re-run asked by `@basinix eval` evaluates the head again, ignoring the
-- cached evaluation.
ALTER TABLE revisions ADD COLUMN fresh_eval INTEGER NOT NULL DEFAULT 0;
