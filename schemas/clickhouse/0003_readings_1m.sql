-- One-minute rollups per metric and device, maintained on insert by readings_1m_mv.
-- Sorted by metric first: one metric over the fleet, or one device's metric, reads a range.
-- Aggregate at query time: sum(count), sum(sum), min(min), max(max), argMaxMerge(last).
CREATE TABLE IF NOT EXISTS readings_1m
(
    metric    LowCardinality(String),
    device_id String,
    minute    DateTime('UTC'),
    count     SimpleAggregateFunction(sum, UInt64),
    sum       SimpleAggregateFunction(sum, Float64),
    min       SimpleAggregateFunction(min, Float64),
    max       SimpleAggregateFunction(max, Float64),
    last      AggregateFunction(argMax, Float64, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (metric, device_id, minute)
-- Retried inserts are dropped here too, not only in readings (docs/delivery.md).
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m_mv TO readings_1m AS
SELECT
    metric,
    device_id,
    toStartOfMinute(event_time) AS minute,
    count() AS count,
    sum(value) AS sum,
    min(value) AS min,
    max(value) AS max,
    argMaxState(value, event_time) AS last
FROM readings
GROUP BY metric, device_id, minute;
