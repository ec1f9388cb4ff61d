-- A push revision (pr = 0) reviews a tracked branch's new tip against
-- its previous tip, for the check runs on the branch's commits: branch
-- names it, and a push supersedes only its own branch's revisions.
ALTER TABLE revisions ADD COLUMN branch TEXT NOT NULL DEFAULT '';
