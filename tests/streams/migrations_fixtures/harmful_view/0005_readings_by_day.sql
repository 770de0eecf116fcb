-- HARMFUL ON PURPOSE: a fixture of the migration gate's tests (tests/streams/migrations/).
-- A materialized view that copies every inserted reading into a second table partitioned by
-- day: each insert writes every row twice and more parts. `migrate check` must fail it.
CREATE TABLE IF NOT EXISTS readings_by_day AS readings
ENGINE = MergeTree
PARTITION BY toDate(event_time)
ORDER BY (metric, event_time);

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_by_day_mv TO readings_by_day AS
SELECT * FROM readings;
