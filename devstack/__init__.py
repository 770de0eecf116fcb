"""The local stack for development and CI: a real Kafka broker and the local ClickHouse."""
