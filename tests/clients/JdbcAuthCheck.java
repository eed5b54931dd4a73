// pgJDBC over TLS (sslmode=verify-full against a test CA) with a SCRAM
// password, as a read-only user: it reads a view, and CREATE is refused.
//
// Usage: java -cp postgresql.jar JdbcAuthCheck.java PORT CA_FILE USER PASSWORD
// Prints "ssl=…", "rows=…" and "create=SQLSTATE".

import java.sql.*;
import java.util.Properties;

public class JdbcAuthCheck {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://localhost:" + args[0] + "/sluice";
        Properties p = new Properties();
        p.setProperty("user", args[2]);
        p.setProperty("password", args[3]);
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", args[1]);
        try (Connection c = DriverManager.getConnection(url, p)) {
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
                rs.next();
                System.out.println("ssl=" + rs.getBoolean(1));
            }
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT count(*) FROM counts")) {
                int rows = 0;
                while (rs.next()) rows++;
                System.out.println("rows=" + rows);
            }
            try (Statement s = c.createStatement()) {
                s.execute("CREATE MATERIALIZED VIEW nope AS SELECT 1 AS one FROM counts");
                System.out.println("create=ok");
            } catch (SQLException e) {
                System.out.println("create=" + e.getSQLState());
            }
        }
    }
}
