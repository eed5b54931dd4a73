// What Metabase, DBeaver and Tableau do over the PostgreSQL JDBC driver:
// DatabaseMetaData (schemas, tables, columns, primary keys, type info,
// indexes) and a PreparedStatement run more than five times, after which
// pgjdbc prepares it on the server and reads results in binary.
//
// Usage: java -cp postgresql.jar JdbcCheck.java PORT VIEW [TYPED_VIEW]
// TYPED_VIEW, a view with columns k (text), span (interval) and doc
// (jsonb), has its columns described and its values read, also in binary.
// Prints one line per fact, "key<TAB>value", for the test to check.

import java.sql.*;

public class JdbcCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/sluice?user=sluice";
        String view = args[1];
        try (Connection c = DriverManager.getConnection(url)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product\t" + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) System.out.println("schema\t" + rs.getString("TABLE_SCHEM"));
            }
            try (ResultSet rs = md.getTables(null, "public", "%", null)) {
                while (rs.next()) {
                    System.out.println("table\t" + rs.getString("TABLE_NAME") + "\t" + rs.getString("TABLE_TYPE"));
                }
            }
            try (ResultSet rs = md.getColumns(null, "public", view, "%")) {
                while (rs.next()) {
                    System.out.println("column\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getString("TYPE_NAME")
                        + "\t" + rs.getInt("DATA_TYPE") + "\t" + rs.getInt("ORDINAL_POSITION"));
                }
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "public", view)) {
                while (rs.next()) System.out.println("primary key\t" + rs.getString("COLUMN_NAME"));
            }
            try (ResultSet rs = md.getIndexInfo(null, "public", view, false, true)) {
                while (rs.next()) System.out.println("index\t" + rs.getString("INDEX_NAME"));
            }
            try (ResultSet rs = md.getTypeInfo()) {
                while (rs.next()) {
                    System.out.println("type info\t" + rs.getString("TYPE_NAME") + "\t" + rs.getInt("DATA_TYPE"));
                }
            }
            if (args.length > 2) typed(c, md, args[2]);
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT k, n, s FROM " + view + " WHERE n >= ? ORDER BY k")) {
                for (int i = 0; i < 8; i++) {
                    ps.setLong(1, 1);
                    int rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            System.out.println("row\t" + i + "\t" + rs.getString(1) + "\t" + rs.getLong(2) + "\t" + rs.getLong(3));
                            rows++;
                        }
                    }
                    boolean server = ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare();
                    System.out.println("execution\t" + i + "\t" + rows + "\t" + (server ? "server-prepared" : "client"));
                }
            }
            // With autocommit off and a fetch size, pgjdbc reads a portal a
            // row per Execute (row limit; the server suspends the portal).
            c.setAutoCommit(false);
            try (Statement st = c.createStatement()) {
                st.setFetchSize(1);
                try (ResultSet rs = st.executeQuery("SELECT k FROM " + view + " ORDER BY k")) {
                    while (rs.next()) System.out.println("fetched\t" + rs.getString(1));
                }
            }
            c.commit();
        }
    }

    // Interval and jsonb columns: described by getColumns, and read the
    // first times in text, then (server-prepared) as pgjdbc asks.
    static void typed(Connection c, DatabaseMetaData md, String view) throws SQLException {
        try (ResultSet rs = md.getColumns(null, "public", view, "%")) {
            while (rs.next()) {
                System.out.println("typed column\t" + rs.getString("COLUMN_NAME") + "\t" + rs.getString("TYPE_NAME")
                    + "\t" + rs.getInt("DATA_TYPE"));
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT k, span, doc FROM " + view + " WHERE k = ?")) {
            for (int i = 0; i < 7; i++) {
                ps.setString(1, "k1");
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        Object span = rs.getObject(2);
                        Object doc = rs.getObject(3);
                        System.out.println("typed value\t" + i + "\t" + rs.getString(1)
                            + "\t" + span.getClass().getSimpleName() + "\t" + span
                            + "\t" + doc.getClass().getSimpleName() + "\t" + doc);
                    }
                }
            }
        }
    }
}
