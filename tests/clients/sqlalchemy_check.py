"""What Superset does on connect: SQLAlchemy's inspector over psycopg 3.

Usage: sqlalchemy_check.py PORT VIEW
Prints one JSON object: schemas, tables, views with their columns and types,
and the rows of VIEW read through SQLAlchemy Core.
"""

import json
import sys

import sqlalchemy as sa


def main() -> None:
    port, view = sys.argv[1], sys.argv[2]
    engine = sa.create_engine(f"postgresql+psycopg://sluice@127.0.0.1:{port}/sluice")
    inspector = sa.inspect(engine)
    out = {
        "server_version": list(engine.dialect.server_version_info or ()),
        "schemas": inspector.get_schema_names(),
        "tables": inspector.get_table_names(schema="public"),
        "views": inspector.get_view_names(schema="public"),
        "materialized_views": inspector.get_materialized_view_names(schema="public"),
        "columns": {
            v: [
                {"name": c["name"], "type": str(c["type"]), "nullable": c["nullable"]}
                for c in inspector.get_columns(v, schema="public")
            ]
            for v in inspector.get_materialized_view_names(schema="public")
        },
        "pk": inspector.get_pk_constraint(view, schema="public"),
        "definition": inspector.get_view_definition(view, schema="public"),
    }
    table = sa.Table(view, sa.MetaData(), autoload_with=engine, schema="public")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*table.columns)).fetchall()
    out["rows"] = [[str(v) for v in r] for r in rows]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
