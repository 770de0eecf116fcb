"""The worker: one OS process per member of the consumer group, each with its own Kafka
consumer and ClickHouse client (docs/design/worker.md has the map of these modules).

``pipeline`` chains the data path: consume (``source``) → decode and validate (``ingest``,
with ``streams.codec`` and ``streams.validate``) → batch (``batch``, ``resends``) → insert
(``sink``) and dead letters (``dlq``) → commit (``intents``). ``app`` runs it as a Faust app,
``supervisor`` runs N processes, ``preflight`` checks the world before the first poll.
"""
