-- Every device ever seen, with first/last event time and its latest firmware and site,
-- maintained on insert by devices_mv. Query with FINAL or GROUP BY device_id.
CREATE TABLE IF NOT EXISTS devices
(
    device_id  String,
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen  SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    firmware   AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    site       AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    metrics    SimpleAggregateFunction(groupUniqArrayArray, Array(String))
)
ENGINE = AggregatingMergeTree
ORDER BY device_id
-- Retried inserts are dropped here too, not only in readings (docs/delivery.md).
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS devices_mv TO devices AS
SELECT
    device_id,
    min(event_time) AS first_seen,
    max(event_time) AS last_seen,
    argMaxState(toString(firmware_name), event_time) AS firmware,
    argMaxState(toString(site_name), event_time) AS site,
    groupUniqArray(toString(metric)) AS metrics
FROM (SELECT device_id, event_time, firmware AS firmware_name, site AS site_name, metric FROM readings)
GROUP BY device_id;
