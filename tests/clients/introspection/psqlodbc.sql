-- The SQL psqlODBC sends for SQLPrimaryKeys(NULL, "public", "counts"): its
-- PGAPI_PrimaryKeys in info.c (postgresql-interfaces/psqlodbc@bc439e8f)
-- appends these pieces, with the table and schema as literals, eq_string
-- "operator(pg_catalog.=) " (standard_conforming_strings is on) and the
-- indnkeyatts condition for servers from 11 on. The first query looks for
-- the primary key index; when it finds none, the second looks for an index
-- named <table>_pkey. psqlODBC runs both over the extended protocol
-- (UseServerSidePrepare=1, its default), with no parameters.
-- protocol: extended

-- name: primary_keys
-- source: info.c, PGAPI_PrimaryKeys, case 1 (reloid 0: by table and schema name)
select ta.attname, ia.attnum, ic.relname, n.nspname, tc.relname from pg_catalog.pg_attribute ta, pg_catalog.pg_attribute ia, pg_catalog.pg_class tc, pg_catalog.pg_index i, pg_catalog.pg_namespace n, pg_catalog.pg_class ic where tc.relname operator(pg_catalog.=) 'counts' AND n.nspname operator(pg_catalog.=) 'public' AND tc.oid operator(pg_catalog.=) i.indrelid AND n.oid operator(pg_catalog.=) tc.relnamespace AND i.indisprimary operator(pg_catalog.=) 't' AND ia.attrelid operator(pg_catalog.=) i.indexrelid AND ta.attrelid operator(pg_catalog.=) i.indrelid AND ta.attnum operator(pg_catalog.=) i.indkey[ia.attnum-1] AND (NOT ta.attisdropped) AND (NOT ia.attisdropped) AND ic.oid operator(pg_catalog.=) i.indexrelid AND ia.attnum operator(pg_catalog.<=) i.indnkeyatts order by ia.attnum

-- name: primary_keys_by_index_name
-- source: info.c, PGAPI_PrimaryKeys, case 2 (the old-fashioned <table>_pkey index)
select ta.attname, ia.attnum, ic.relname, n.nspname, NULL from pg_catalog.pg_attribute ta, pg_catalog.pg_attribute ia, pg_catalog.pg_class ic, pg_catalog.pg_index i, pg_catalog.pg_namespace n where ic.relname operator(pg_catalog.=) 'counts_pkey' AND n.nspname operator(pg_catalog.=) 'public' AND ic.oid operator(pg_catalog.=) i.indexrelid AND n.oid operator(pg_catalog.=) ic.relnamespace AND ia.attrelid operator(pg_catalog.=) i.indexrelid AND ta.attrelid operator(pg_catalog.=) i.indrelid AND ta.attnum operator(pg_catalog.=) i.indkey[ia.attnum-1] AND (NOT ta.attisdropped) AND (NOT ia.attisdropped) AND ia.attnum operator(pg_catalog.<=) i.indnkeyatts order by ia.attnum
