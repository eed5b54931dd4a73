-- The SQL pgcli sends at startup and to fill its completer (its
-- CompletionRefresher calls PGExecute.search_path, schemata, tables, views,
-- table_columns, view_columns, foreignkeys, datatypes, databases, casing
-- and functions), copied from pgcli/pgexecute.py (dbcli/pgcli@5900a081, as in pgcli 4.7.1 on PyPI).
-- pgcli runs them through psycopg 3: %s parameters are bound over the
-- extended protocol (a list of str as text[]), the rest go as simple queries.
-- protocol: psycopg

-- name: is_protocol_error
-- source: pgcli/pgexecute.py, PGExecute.is_protocol_error: the first query on connect
SELECT 1

-- name: get_timezone
-- source: pgcli/pgexecute.py, PGExecute.get_timezone: at startup, to compare with the local zone
show time zone

-- name: set_timezone
-- source: pgcli/pgexecute.py, PGExecute.set_timezone: psycopg.sql.SQL("set time zone {}") with Identifier("Europe/Paris")
set time zone "Europe/Paris"

-- name: search_path
-- source: pgcli/pgexecute.py, PGExecute.search_path_query: schemata refresher (completer.set_search_path)
        SELECT * FROM unnest(current_schemas(true))

-- name: search_path_fallback
-- source: pgcli/pgexecute.py, PGExecute.search_path: its fallback when unnest(...) fails
SELECT * FROM current_schemas(true)

-- name: schemata
-- source: pgcli/pgexecute.py, PGExecute.schemata_query: schemata refresher
        SELECT  nspname
        FROM    pg_catalog.pg_namespace
        ORDER BY 1 

-- name: tables
-- source: pgcli/pgexecute.py, PGExecute.tables_query: tables refresher, tables() binds kinds [r, p, f]
-- params: [["r", "p", "f"]]
        SELECT  n.nspname schema_name,
                c.relname table_name
        FROM    pg_catalog.pg_class c
                LEFT JOIN pg_catalog.pg_namespace n
                    ON n.oid = c.relnamespace
        WHERE   c.relkind = ANY(%s)
        ORDER BY 1,2;

-- name: views
-- source: pgcli/pgexecute.py, PGExecute.tables_query: views refresher, views() binds kinds [v, m]
-- params: [["v", "m"]]
        SELECT  n.nspname schema_name,
                c.relname table_name
        FROM    pg_catalog.pg_class c
                LEFT JOIN pg_catalog.pg_namespace n
                    ON n.oid = c.relnamespace
        WHERE   c.relkind = ANY(%s)
        ORDER BY 1,2;

-- name: table_columns
-- source: pgcli/pgexecute.py, PGExecute._columns (server >= 8.4): tables refresher, kinds [r, p, f]
-- params: [["r", "p", "f"]]
                SELECT  nsp.nspname schema_name,
                        cls.relname table_name,
                        att.attname column_name,
                        att.atttypid::regtype::text type_name,
                        att.atthasdef AS has_default,
                        pg_catalog.pg_get_expr(def.adbin, def.adrelid, true) as default
                FROM    pg_catalog.pg_attribute att
                        INNER JOIN pg_catalog.pg_class cls
                            ON att.attrelid = cls.oid
                        INNER JOIN pg_catalog.pg_namespace nsp
                            ON cls.relnamespace = nsp.oid
                        LEFT OUTER JOIN pg_attrdef def
                            ON def.adrelid = att.attrelid
                            AND def.adnum = att.attnum
                WHERE   cls.relkind = ANY(%s)
                        AND NOT att.attisdropped
                        AND att.attnum  > 0
                ORDER BY 1, 2, att.attnum

-- name: view_columns
-- source: pgcli/pgexecute.py, PGExecute._columns (server >= 8.4): views refresher, kinds [v, m]
-- params: [["v", "m"]]
                SELECT  nsp.nspname schema_name,
                        cls.relname table_name,
                        att.attname column_name,
                        att.atttypid::regtype::text type_name,
                        att.atthasdef AS has_default,
                        pg_catalog.pg_get_expr(def.adbin, def.adrelid, true) as default
                FROM    pg_catalog.pg_attribute att
                        INNER JOIN pg_catalog.pg_class cls
                            ON att.attrelid = cls.oid
                        INNER JOIN pg_catalog.pg_namespace nsp
                            ON cls.relnamespace = nsp.oid
                        LEFT OUTER JOIN pg_attrdef def
                            ON def.adrelid = att.attrelid
                            AND def.adnum = att.attnum
                WHERE   cls.relkind = ANY(%s)
                        AND NOT att.attisdropped
                        AND att.attnum  > 0
                ORDER BY 1, 2, att.attnum

-- name: foreignkeys
-- source: pgcli/pgexecute.py, PGExecute.foreignkeys: tables refresher
                SELECT s_p.nspname AS parentschema,
                       t_p.relname AS parenttable,
                       unnest((
                        select
                            array_agg(attname ORDER BY i)
                        from
                            (select unnest(confkey) as attnum, generate_subscripts(confkey, 1) as i) x
                            JOIN pg_catalog.pg_attribute c USING(attnum)
                            WHERE c.attrelid = fk.confrelid
                        )) AS parentcolumn,
                       s_c.nspname AS childschema,
                       t_c.relname AS childtable,
                       unnest((
                        select
                            array_agg(attname ORDER BY i)
                        from
                            (select unnest(conkey) as attnum, generate_subscripts(conkey, 1) as i) x
                            JOIN pg_catalog.pg_attribute c USING(attnum)
                            WHERE c.attrelid = fk.conrelid
                        )) AS childcolumn
                FROM pg_catalog.pg_constraint fk
                JOIN pg_catalog.pg_class      t_p ON t_p.oid = fk.confrelid
                JOIN pg_catalog.pg_namespace  s_p ON s_p.oid = t_p.relnamespace
                JOIN pg_catalog.pg_class      t_c ON t_c.oid = fk.conrelid
                JOIN pg_catalog.pg_namespace  s_c ON s_c.oid = t_c.relnamespace
                WHERE fk.contype = 'f';
                

-- name: datatypes
-- source: pgcli/pgexecute.py, PGExecute.datatypes (server > 9.0): types refresher
                    SELECT n.nspname schema_name,
                           t.typname type_name
                    FROM   pg_catalog.pg_type t
                           INNER JOIN pg_catalog.pg_namespace n
                              ON n.oid = t.typnamespace
                    WHERE ( t.typrelid = 0  -- non-composite types
                            OR (  -- composite type, but not a table
                                  SELECT c.relkind = 'c'
                                  FROM pg_catalog.pg_class c
                                  WHERE c.oid = t.typrelid
                                )
                          )
                          AND NOT EXISTS( -- ignore array types
                                SELECT  1
                                FROM    pg_catalog.pg_type el
                                WHERE   el.oid = t.typelem AND el.typarray = t.oid
                              )
                          AND n.nspname <> 'pg_catalog'
                          AND n.nspname <> 'information_schema'
                    ORDER BY 1, 2;
                    

-- name: databases
-- source: pgcli/pgexecute.py, PGExecute.databases_query: databases refresher
        SELECT d.datname
        FROM pg_catalog.pg_database d
        ORDER BY 1

-- name: casing
-- source: pgcli/pgexecute.py, PGExecute.casing: casing refresher (when casing_file is set)
          WITH Words AS (
                SELECT regexp_split_to_table(prosrc, '\W+') AS Word, COUNT(1)
                FROM pg_catalog.pg_proc P
                JOIN pg_catalog.pg_namespace N ON N.oid = P.pronamespace
                JOIN pg_catalog.pg_language L ON L.oid = P.prolang
                WHERE L.lanname IN ('sql', 'plpgsql')
                AND N.nspname NOT IN ('pg_catalog', 'information_schema')
                GROUP BY Word
            ),
            OrderWords AS (
                SELECT Word,
                    ROW_NUMBER() OVER(PARTITION BY LOWER(Word) ORDER BY Count DESC)
                FROM Words
                WHERE Word ~* '.*[a-z].*'
            ),
            Names AS (
                --Column names
                SELECT attname AS Name
                FROM pg_catalog.pg_attribute
                UNION -- Table/view names
                SELECT relname
                FROM pg_catalog.pg_class
                UNION -- Function names
                SELECT proname
                FROM pg_catalog.pg_proc
                UNION -- Type names
                SELECT typname
                FROM pg_catalog.pg_type
                UNION -- Schema names
                SELECT nspname
                FROM pg_catalog.pg_namespace
                UNION -- Parameter names
                SELECT unnest(proargnames)
                FROM pg_proc
            )
            SELECT Word
            FROM OrderWords
            WHERE LOWER(Word) IN (SELECT Name FROM Names)
            AND Row_Number = 1;
            

-- name: functions
-- source: pgcli/pgexecute.py, PGExecute.functions (server >= 11): functions refresher
                SELECT n.nspname schema_name,
                        p.proname func_name,
                        p.proargnames,
                        COALESCE(proallargtypes::regtype[], proargtypes::regtype[])::text[],
                        p.proargmodes,
                        prorettype::regtype::text return_type,
                        p.prokind = 'a' is_aggregate,
                        p.prokind = 'w' is_window,
                        p.proretset is_set_returning,
                        d.deptype = 'e' is_extension,
                        pg_get_expr(proargdefaults, 0) AS arg_defaults
                FROM pg_catalog.pg_proc p
                        INNER JOIN pg_catalog.pg_namespace n
                            ON n.oid = p.pronamespace
                LEFT JOIN pg_depend d ON d.objid = p.oid and d.deptype = 'e'
                WHERE p.prorettype::regtype != 'trigger'::regtype
                ORDER BY 1, 2
                

-- name: full_databases
-- source: pgcli/pgexecute.py, PGExecute.full_databases_query: pgcli -l / \l
        SELECT d.datname as "Name",
            pg_catalog.pg_get_userbyid(d.datdba) as "Owner",
            pg_catalog.pg_encoding_to_char(d.encoding) as "Encoding",
            d.datcollate as "Collate",
            d.datctype as "Ctype",
            pg_catalog.array_to_string(d.datacl, E'
') AS "Access privileges"
        FROM pg_catalog.pg_database d
        ORDER BY 1

-- name: socket_directory
-- source: pgcli/pgexecute.py, PGExecute.socket_directory_query: on connect without a host
        SELECT setting
        FROM pg_settings
        WHERE name = 'unix_socket_directories'
    

-- name: view_definition
-- source: pgcli/pgexecute.py, PGExecute.view_definition_query: \ev counts
-- params: ["counts"]
        WITH v AS (SELECT %s::pg_catalog.regclass::pg_catalog.oid AS v_oid)
        SELECT nspname, relname, relkind,
               pg_catalog.pg_get_viewdef(c.oid, true),
               array_remove(array_remove(c.reloptions,'check_option=local'),
                            'check_option=cascaded') AS reloptions,
               CASE
                 WHEN 'check_option=local' = ANY (c.reloptions) THEN 'LOCAL'::text
                 WHEN 'check_option=cascaded' = ANY (c.reloptions) THEN 'CASCADED'::text
                 ELSE NULL
               END AS checkoption
        FROM pg_catalog.pg_class c
        LEFT JOIN pg_catalog.pg_namespace n ON (c.relnamespace = n.oid)
        JOIN v ON (c.oid = v.v_oid)
