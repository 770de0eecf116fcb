"""The lag exporter: consumer lag in messages and seconds, and consumer status, from Kafka.

A refresh (refresh.py) reads offsets in batches (offsets.py), works out each partition's
backlog (backlog.py), reads the timestamp of the oldest unconsumed message where there is lag
(timestamps.py) and evaluates the consumer status over a window of refreshes (status.py). The
exporter (exporter.py) refreshes on an interval on its own thread and publishes the result
(state.py) to Prometheus (collector.py) and as JSON (snapshot.py), served over HTTP (server.py).
Design: docs/design/lag.md.
"""
