"""The SQL the read API runs, in one place: the API executes it and the migration gate
(streams/migrations/gate) measures it before a migration ships."""

# GET /v1/devices/{device_id}/latest
LATEST_SQL = """
SELECT metric, value, seq, toUnixTimestamp64Milli(event_time), toUnixTimestamp64Milli(stored_at)
FROM latest FINAL
WHERE device_id = {device_id:String}
ORDER BY metric
"""

# Freshness of device answers (api/arrivals.py), for a batch of devices: the partitions their
# readings arrived on, and (device_id '') when each partition's first reading was stored.
# Times in Unix ms.
ARRIVALS_SQL = """
SELECT device_id, source_partition,
       toUnixTimestamp64Milli(min(first_event)), toUnixTimestamp64Milli(max(last_event)),
       toUnixTimestamp64Milli(min(first_stored)), toUnixTimestamp64Milli(max(last_stored))
FROM device_partitions
WHERE device_id IN {devices:Array(String)}
GROUP BY device_id, source_partition
"""

# GET /v1/devices
DEVICES_SQL = """
SELECT device_id,
       toUnixTimestamp64Milli(min(first_seen)),
       toUnixTimestamp64Milli(max(last_seen)),
       argMaxMerge(firmware),
       argMaxMerge(site),
       arraySort(groupUniqArrayArray(metrics))
FROM devices
WHERE device_id > {after:String} AND startsWith(device_id, {prefix:String})
GROUP BY device_id
ORDER BY device_id
LIMIT {limit:UInt32}
"""

# GET /v1/devices/{device_id}/series: $VALUE is the aggregate, from ROLLUP or RAW below.
ROLLUP_SQL = """
SELECT intDiv(toUnixTimestamp(minute), {step:UInt32}) * {step:UInt32} AS bucket, $VALUE AS value
FROM readings_1m
WHERE metric = {metric:String} AND device_id = {device_id:String}
  AND minute >= toDateTime({start:UInt32}, 'UTC') AND minute < toDateTime({end:UInt32}, 'UTC')
GROUP BY bucket
ORDER BY bucket
"""
RAW_SQL = """
SELECT intDiv(toUnixTimestamp(event_time), {step:UInt32}) * {step:UInt32} AS bucket, $VALUE AS value
FROM readings FINAL
WHERE device_id = {device_id:String} AND metric = {metric:String}
  AND event_time >= toDateTime64({start:UInt32}, 3, 'UTC')
  AND event_time < toDateTime64({end:UInt32}, 3, 'UTC')
GROUP BY bucket
ORDER BY bucket
"""

ROLLUP = {
    "avg": "sum(sum) / sum(count)",
    "min": "min(min)",
    "max": "max(max)",
    "last": "argMaxMerge(last)",
    "count": "sum(count)",
}
RAW = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "last": "argMax(value, event_time)",
    "count": "count()",
}
