-- Raw readings, one row per (device, metric, event time): the table analysts query.
-- Sorted for "one device over a time range"; "one metric over the fleet" reads readings_1m.
-- Inserts carry a deduplication token (topic/partition/offset range), kept for the last
-- 10,000 inserts; ReplacingMergeTree is the second line: rows with the same key collapse on
-- merge and with FINAL (docs/tables.md).
CREATE TABLE IF NOT EXISTS readings
(
    device_id  String CODEC(ZSTD(1)),
    metric     LowCardinality(String),
    event_time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    value      Float64 CODEC(Gorilla, ZSTD(1)),
    seq        UInt64 CODEC(Delta, ZSTD(1)),
    firmware   LowCardinality(String),
    site       LowCardinality(String),
    stored_at  DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(DoubleDelta, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (device_id, metric, event_time, seq)
SETTINGS non_replicated_deduplication_window = 10000;
