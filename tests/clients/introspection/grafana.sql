-- The SQL Grafana's PostgreSQL data source sends for its pickers, from
-- public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts
-- (grafana/grafana@12f912ab), rendered as its template strings render
-- them (names inlined as quoted literals). Grafana's backend runs them over
-- the extended protocol without parameters. (Its health check, `-- ping`,
-- is an empty query: psycopg_check.py tests it.)
-- protocol: extended

-- name: version
-- source: postgresMetaQuery.ts, getVersion(): the data source's version check (datasource.ts getVersion)
SELECT current_setting('server_version_num')::int/100 as version

-- name: timescaledb_version
-- source: postgresMetaQuery.ts, getTimescaleDBVersion(): the configuration page's TimescaleDB auto-detection
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'

-- name: schemas
-- source: postgresMetaQuery.ts, showSchemas(): the schema (dataset) picker
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name

-- name: tables
-- source: postgresMetaQuery.ts, showTables(): the table picker and SQL completion (datasource.ts fetchTables)
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1

-- name: tables_in_schema
-- source: postgresMetaQuery.ts, showTables('public'): the table picker once a schema is chosen
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1

-- name: columns
-- source: postgresMetaQuery.ts, getSchema('counts'): the column picker (datasource.ts fetchFields)
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('counts'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('counts'))[1]
          AND quote_ident(table_name) = (parse_ident('counts'))[2]
        ELSE quote_ident(table_name) = 'counts'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END

-- name: columns_qualified
-- source: postgresMetaQuery.ts, getSchema('public.counts'): the column picker for a schema-qualified table
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('public.counts'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('public.counts'))[1]
          AND quote_ident(table_name) = (parse_ident('public.counts'))[2]
        ELSE quote_ident(table_name) = 'public.counts'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
