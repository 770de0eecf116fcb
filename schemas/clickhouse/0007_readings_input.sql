-- The workers' fast insert path (docs/design/worker.md): one row per message, as the Avro bodies
-- the worker already decoded and validated, parsed by ClickHouse (FORMAT Avro) into this table,
-- which stores nothing; readings_input_mv expands each message's readings into rows of readings,
-- whose own views then run as for any insert. `source` is the message's Kafka partition (2 bytes)
-- and offset (8 bytes), little-endian. A repeated insert with the same deduplication token is
-- dropped by readings and its views (deduplicate_blocks_in_dependent_materialized_views).
CREATE TABLE IF NOT EXISTS readings_input
(
    source     FixedString(10),
    device_id  String,
    event_time DateTime64(3, 'UTC'),
    seq        UInt64,
    readings   Map(String, Float64),
    firmware   String,
    site       Nullable(String)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_input_mv TO readings AS
SELECT
    device_id,
    metric,
    event_time,
    value,
    seq,
    firmware,
    ifNull(site, '') AS site,
    reinterpretAsUInt16(substring(source, 1, 2)) AS source_partition,
    reinterpretAsUInt64(substring(source, 3, 8)) AS source_offset
FROM readings_input
ARRAY JOIN
    mapKeys(readings) AS metric,
    mapValues(readings) AS value,
    -- A key the writer repeated in the map counts once, with its last value, as Avro readers
    -- (and the worker's validation) see it; the per-key search runs only for such maps.
    if(
        arrayUniq(mapKeys(readings)) = length(readings),
        arrayWithConstant(length(readings), 1),
        arrayMap(
            (key, position) -> arrayLastIndex(other -> other = key, mapKeys(readings)) = position,
            mapKeys(readings),
            arrayEnumerate(mapKeys(readings))
        )
    ) AS last_of_its_key
WHERE last_of_its_key;
