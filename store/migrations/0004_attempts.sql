-- A re-run review of a revision gets new check runs: the attempt tells
-- them apart from the earlier ones (it is part of their external id).
ALTER TABLE revisions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
