-- A re-run asked while a revision is still being worked on runs when it
-- finishes: 1 re-run, 2 with failures rebuilt, 4 with a fresh evaluation.
ALTER TABLE revisions ADD COLUMN pending_rerun INTEGER NOT NULL DEFAULT 0;
