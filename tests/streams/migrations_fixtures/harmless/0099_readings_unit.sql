-- A harmless change: a fixture of the migration gate's tests (tests/streams/migrations/).
-- A new column with a default: existing parts are untouched, inserts that do not name it
-- store the default, and no query the workload runs reads it. `migrate check` must pass it.
ALTER TABLE readings ADD COLUMN IF NOT EXISTS unit LowCardinality(String) DEFAULT '';
