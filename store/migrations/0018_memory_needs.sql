-- What a package is known to need in memory: a build killed for its
-- cgroup's memory limit needs more (twice that limit) next time, on a
-- machine that has it. By store.DrvName, as build times are.
CREATE TABLE memory_needs (
  name TEXT PRIMARY KEY,
  mib INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
