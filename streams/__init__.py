"""streamgauge: Kafka to ClickHouse telemetry ingestion."""
