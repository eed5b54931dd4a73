//! The settings a session starts with and the server version clients are
//! told: read by sessions (SET, SHOW) and by the catalog (`pg_settings`,
//! `current_setting`, `version()`), so they sit below both.

/// The PostgreSQL version clients are told they talk to: what decides which
/// catalog queries psql and drivers send.
pub(super) const SERVER_VERSION: &str = "16.6";

/// Settings every session starts with (what drivers ask about).
pub(super) const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("max_identifier_length", "63"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", "160006"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction isolation level", "read committed"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
];
