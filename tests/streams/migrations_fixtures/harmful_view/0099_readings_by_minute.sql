-- HARMFUL ON PURPOSE: a fixture of the migration gate's tests (tests/streams/migrations/).
-- A materialized view that copies every inserted reading into a second table partitioned by
-- minute: each insert writes every row twice and more parts. `migrate check` must fail it.
CREATE TABLE IF NOT EXISTS readings_by_minute AS readings
ENGINE = MergeTree
PARTITION BY toStartOfMinute(event_time)
ORDER BY (metric, event_time);

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_by_minute_mv TO readings_by_minute AS
SELECT * FROM readings;
