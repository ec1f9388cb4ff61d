-- The PR's author (its GitHub login), for what the review does on the PR
-- besides check runs: no review request to the author, the
-- "11.by: package-maintainer" label when the author maintains what the
-- PR changes.
ALTER TABLE revisions ADD COLUMN author TEXT NOT NULL DEFAULT '';
