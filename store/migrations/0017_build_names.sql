-- A derivation's name without its hash and version (builtins.parseDrvName's
-- name: "hello" for /nix/store/…-hello-2.12.drv), so that the scheduler
-- estimates a new derivation's build time from the last builds of the
-- same package. Rows from before have none: estimates start with the next
-- builds.
ALTER TABLE builds ADD COLUMN name TEXT NOT NULL DEFAULT '';
CREATE INDEX builds_by_name ON builds (name, result, updated_at);
