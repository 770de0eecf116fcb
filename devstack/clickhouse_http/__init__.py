"""The local ClickHouse: chDB's ClickHouse engine served over ClickHouse's HTTP interface.

For development and CI only (``python -m devstack.clickhouse_http --data-dir PATH``). It serves
what clickhouse-connect and curl use, and nothing more:

- ``GET /ping`` and ``GET /`` answer ``Ok.``; queries by GET (read-only, as in ClickHouse) and
  POST, the statement being the ``query`` parameter, a line break and the body;
- user and password by HTTP Basic auth, ``X-ClickHouse-User``/``-Key`` or ``user``/``password``;
- ``database`` (or ``X-ClickHouse-Database``), ``default_format`` (or ``X-ClickHouse-Format``),
  ``query_id``, ``param_<name>`` query parameters (also as multipart form fields), any other
  parameter as a query setting (unknown ones fail with UNKNOWN_SETTING);
- sessions (``session_id``, ``session_timeout``, ``session_check``, ``close_session``): SET,
  USE and temporary tables persist across a session's requests, while a request's ``database``
  and URL settings apply to that request only;
- INSERT data in any input format the engine reads (Native, RowBinary, CSV, ...), with request
  bodies compressed as Content-Encoding gzip, deflate, zstd or lz4, failing as in ClickHouse when
  the data, a constraint, a materialized view or the table rejects it; responses compressed by
  Accept-Encoding (zstd, lz4, gzip, deflate) when ``enable_http_compression`` is on;
- ClickHouse's error bodies, HTTP statuses and headers (X-ClickHouse-Exception-Code,
  -Summary, -Query-Id, -Format, -Timezone, -Server-Display-Name).

Not supported: ClickHouse's internal compression (``compress=1``, ``decompress=1``), external
data (files in a multipart form), progress headers, cancelling a query when its client
disconnects, ``client_protocol_version`` (clients fall back to protocol 0), query parameters in
an INSERT that carries data, INSERT ... SELECT with data (the ``input()`` table function), roles
and quotas. Results are buffered whole before they are sent (as with ``wait_end_of_query=1``).
engine.py says what runs in parallel and what is serialized, and how INSERT data reaches chDB.
"""
