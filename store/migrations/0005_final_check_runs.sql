-- Whether a check run's final output (its conclusion and annotations) was
-- sent: it is sent once, since GitHub appends annotations on every update.
ALTER TABLE check_runs ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
