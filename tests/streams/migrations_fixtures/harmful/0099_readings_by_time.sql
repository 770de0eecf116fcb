-- HARMFUL ON PURPOSE: a fixture of the migration gate's tests (tests/streams/migrations/).
-- Rebuilds readings sorted by event time first and swaps it in: every query about one device
-- over a time range (the API's raw series, the analysts' one-device query) now reads the
-- whole time range of the fleet instead of one device's rows. `migrate check` must fail it.
CREATE TABLE IF NOT EXISTS readings_by_time AS readings
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (event_time, device_id, metric, seq)
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO readings_by_time SELECT * FROM readings;

EXCHANGE TABLES readings AND readings_by_time;

DROP TABLE IF EXISTS readings_by_time SYNC;
