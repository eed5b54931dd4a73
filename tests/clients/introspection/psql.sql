-- psql's describe commands, run by psql itself (psql -X -E echoes the SQL
-- each one sends). psql builds that SQL in src/bin/psql/describe.c of
-- PostgreSQL (postgres/postgres, REL_15 as Debian's postgresql-client 15
-- that .ci/run installs): listTables for \d and \dm,
-- describeOneTableDetails for \d+, listAllDbs for \l+, describeFunctions
-- for \df. They go as simple queries.
-- protocol: psql

-- name: relations
-- source: describe.c, listTables("tvmsE", NULL, false, false): \d lists the relations
\d

-- name: describe_view
-- source: describe.c, describeTableDetails / describeOneTableDetails (verbose): \d+ of a view made with odd spacing and IF NOT EXISTS; its definition is pg_get_viewdef(oid, true)
\d+ shaped

-- name: describe_view_with_options
-- source: describe.c, describeOneTableDetails (verbose): \d+ of a view with WITH (…) after its query
\d+ windowed

-- name: databases
-- source: describe.c, listAllDbs(NULL, true): \l+ with sizes and tablespaces
\l+

-- name: functions
-- source: describe.c, describeFunctions("", NULL, NULL, NULL, 0, false, false): \df
\df

-- name: materialized_views
-- source: describe.c, listTables("m", NULL, false, false): \dm
\dm
