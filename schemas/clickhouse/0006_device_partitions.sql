-- The Kafka partitions each device's readings arrived on, and when, maintained on insert by
-- device_partitions_mv from readings.source_partition: the read API's freshness follows the lag
-- of the partitions a device really writes to, whatever partitioner its producer uses
-- (docs/api.md). Rows with device_id '' (no device has that id) hold each partition's figures
-- over every device: when its first reading was stored tells a partition added to the topic
-- later. max_seq, the highest seq stored per device, tells the workers a resend from a new
-- message (docs/delivery.md). Query with GROUP BY; only min and max are kept, so a repeated
-- insert changes nothing and no deduplication window is needed. One view, one table: one more
-- part per insert.
CREATE TABLE IF NOT EXISTS device_partitions
(
    device_id        String,
    source_partition UInt16,
    first_event      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_event       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    first_stored     SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_stored      SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    max_seq          SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (device_id, source_partition);

CREATE MATERIALIZED VIEW IF NOT EXISTS device_partitions_mv TO device_partitions AS
SELECT
    device_id,
    source_partition,
    min(event_time) AS first_event,
    max(event_time) AS last_event,
    min(stored_at) AS first_stored,
    max(stored_at) AS last_stored,
    max(seq) AS max_seq
FROM readings
GROUP BY GROUPING SETS ((device_id, source_partition), (source_partition))
SETTINGS group_by_use_nulls = 0;
