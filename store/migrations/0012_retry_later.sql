-- A revision that failed for the machine's fault is queued again for
-- later: not before not_before (unix ms), at most a few times.
ALTER TABLE revisions ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE revisions ADD COLUMN machine_failures INTEGER NOT NULL DEFAULT 0;
