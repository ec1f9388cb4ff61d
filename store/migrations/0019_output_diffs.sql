-- What a change did to an attribute's outputs (sizes, files, closure), as
-- JSON, for the attributes built on both sides.
ALTER TABLE verdicts ADD COLUMN outputs TEXT NOT NULL DEFAULT '';
