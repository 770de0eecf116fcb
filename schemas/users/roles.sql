-- The roles of docs/clickhouse-users.md, run by `streamgauge migrate users` (or printed by
-- `migrate users --print` for an administrator to run). {database} is the streamgauge
-- database. Every statement creates only what is missing: a later change to a profile, a
-- grant or a quota is an ALTER of yours.

-- Settings each role runs with; `readonly = 2` reads only but may set per-query settings
-- within the constraints (the API sets max_execution_time on each query).
CREATE SETTINGS PROFILE IF NOT EXISTS streamgauge_api_profile SETTINGS
    readonly = 2,
    max_execution_time = 30 MAX 30,
    max_memory_usage = 2147483648 MAX 2147483648,
    max_result_rows = 1000000;
CREATE SETTINGS PROFILE IF NOT EXISTS streamgauge_analyst_profile SETTINGS
    readonly = 2,
    max_execution_time = 120 MAX 600,
    max_memory_usage = 8589934592 MAX 8589934592;

-- `migrate`: the tables of the database, and the staging gate's scratch databases.
CREATE ROLE IF NOT EXISTS streamgauge_migrate_role;
GRANT CREATE, ALTER, DROP, SELECT, INSERT, TRUNCATE, OPTIMIZE, SHOW
    ON {database}.* TO streamgauge_migrate_role;
GRANT CREATE DATABASE, DROP DATABASE ON *.* TO streamgauge_migrate_role;

-- The workers: their inserts (the views write as their definer, the migrating user), what
-- the resend check reads, and the engines their start-up check looks at.
CREATE ROLE IF NOT EXISTS streamgauge_ingest_role;
GRANT INSERT ON {database}.readings_input TO streamgauge_ingest_role;
GRANT INSERT ON {database}.readings TO streamgauge_ingest_role;
GRANT INSERT ON {database}.dead_letters TO streamgauge_ingest_role;
GRANT SELECT ON {database}.readings TO streamgauge_ingest_role;
GRANT SELECT ON {database}.device_partitions TO streamgauge_ingest_role;
GRANT SHOW TABLES, SHOW COLUMNS ON {database}.* TO streamgauge_ingest_role;

-- The read API: reads only, bounded per query, one budget per hour for all its pods.
CREATE ROLE IF NOT EXISTS streamgauge_api_role SETTINGS PROFILE 'streamgauge_api_profile';
GRANT SELECT ON {database}.* TO streamgauge_api_role;
CREATE QUOTA IF NOT EXISTS streamgauge_api_quota
    FOR INTERVAL 1 hour MAX queries = 1000000, read_rows = 100000000000
    TO streamgauge_api_role;

-- Analysts (one user each, docs/clickhouse-users.md): reads only, a budget per person.
CREATE ROLE IF NOT EXISTS streamgauge_analyst_role SETTINGS PROFILE 'streamgauge_analyst_profile';
GRANT SELECT ON {database}.* TO streamgauge_analyst_role;
CREATE QUOTA IF NOT EXISTS streamgauge_analyst_quota KEYED BY user_name
    FOR INTERVAL 1 hour MAX queries = 2000, read_rows = 50000000000, execution_time = 3600
    TO streamgauge_analyst_role;
