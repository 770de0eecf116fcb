-- The latest reading of every device and metric, maintained on insert by latest_mv.
-- Query with FINAL (or argMax by event_time): older versions collapse on merge.
CREATE TABLE IF NOT EXISTS latest
(
    device_id  String,
    metric     LowCardinality(String),
    value      Float64,
    event_time DateTime64(3, 'UTC'),
    seq        UInt64,
    stored_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(event_time)
ORDER BY (device_id, metric)
-- Retried inserts are dropped here too, not only in readings (docs/delivery.md).
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS latest_mv TO latest AS
SELECT device_id, metric, newest.1 AS value, newest.2 AS event_time, newest.3 AS seq, newest.4 AS stored_at
FROM
(
    SELECT device_id, metric, argMax((value, event_time, seq, stored_at), (event_time, seq)) AS newest
    FROM readings
    GROUP BY device_id, metric
);
