-- What the web pages show of a PR: its title at each head, and whether it
-- was merged when it was closed.
ALTER TABLE revisions ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE pr_closed ADD COLUMN merged INTEGER NOT NULL DEFAULT 0;
