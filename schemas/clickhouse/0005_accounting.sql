-- Where each reading came from: the Kafka partition and offset of its message. Every stored row
-- can be tied to the message it came from (docs/delivery.md), and the read API's freshness
-- follows the partitions a device's messages really arrive on (docs/api.md).
ALTER TABLE readings ADD COLUMN IF NOT EXISTS source_partition UInt16 DEFAULT 0 CODEC(T64, ZSTD(1));

ALTER TABLE readings ADD COLUMN IF NOT EXISTS source_offset UInt64 DEFAULT 0 CODEC(T64, ZSTD(1));

-- Dead letters Kafka refused to hold (larger than the dead-letter topic's limit): the original
-- bytes are kept here, and the dead-letter topic gets a reference with the same headers.
CREATE TABLE IF NOT EXISTS dead_letters
(
    source_topic     LowCardinality(String),
    source_partition UInt32,
    source_offset    UInt64,
    reason           LowCardinality(String),
    detail           String,
    key              String,
    payload          String CODEC(ZSTD(3)),
    headers          Map(String, String),
    stored_at        DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, source_partition, source_offset);

-- Deduplication tokens are kept for 100,000 inserts per table: at 4 inserts/s per partition
-- (a caught-up partition flushes every 0.25 s) that covers 24 partitions for about 17 minutes,
-- longer than a member's session timeout plus a restart. The worker checks this at start.
ALTER TABLE readings MODIFY SETTING non_replicated_deduplication_window = 100000;

ALTER TABLE latest MODIFY SETTING non_replicated_deduplication_window = 100000;

ALTER TABLE readings_1m MODIFY SETTING non_replicated_deduplication_window = 100000;

ALTER TABLE devices MODIFY SETTING non_replicated_deduplication_window = 100000;
