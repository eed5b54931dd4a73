-- Security: which source addresses are brute-forcing logins or scanning
-- ports? Per source address and 10-second window of event time: the
-- attempts, the failed logins and the distinct destination ports. A window
-- with more than 75 failures or more than 250 distinct ports is suspect; the
-- final query ranks the suspects. A successful login from an address in the
-- 10 s after a window with more than 75 failures from it may be a break-in
-- (an interval join of the windows with the connections).
--
--   cargo run -- run queries/scenarios/security.sql
--
-- 60,000 connection attempts in about 3 s of wall time. They cover 5 min of
-- event time (one every 5 ms), at most 2 s out of order. Source addresses are
-- Zipf-skewed, so the first two in the list make about two thirds of the
-- traffic. Destination ports are uniform over 1-1024, and 30 % of attempts
-- fail. The generator draws each column independently, so every address has
-- the same failure rate: attackers stand out by volume, not by ratio.

CREATE SOURCE connections (
    src_ip   TEXT,
    dst_port INT,
    success  BOOLEAN,
    ts       TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (
    connector = 'datagen',
    rows_per_second = 20000,
    limit = 60000,
    seed = 3,
    fields.src_ip.values = '203.0.113.66,198.51.100.23,10.0.0.12,10.0.0.15,10.0.0.31,10.0.1.4,10.0.1.9,10.0.2.20,10.0.2.21,10.0.3.7,10.0.3.8,192.0.2.44',
    fields.src_ip.skew = 1.5,
    fields.dst_port.min = 1,
    fields.dst_port.max = 1024,
    fields.success.values = 'true,false',
    fields.success.weights = '70,30',
    fields.ts.kind = 'sequence',
    fields.ts.start = '2026-01-01 00:00:00',
    fields.ts.step = '5ms',
    fields.ts.max_lag = '2s'
);

CREATE MATERIALIZED VIEW probes AS
    SELECT src_ip, window_start, window_end,
           count(*) AS attempts,
           sum(CASE WHEN success THEN 0 ELSE 1 END) AS failed,
           count(DISTINCT dst_port) AS ports
    FROM TUMBLE(connections, ts, INTERVAL '10 seconds')
    GROUP BY src_ip, window_start, window_end;

CREATE MATERIALIZED VIEW suspects AS
    SELECT src_ip, window_start, window_end, attempts, failed, ports,
           CASE
               WHEN failed > 75 AND ports > 250 THEN 'brute force + port scan'
               WHEN failed > 75 THEN 'brute force'
               ELSE 'port scan'
           END AS reason
    FROM probes
    WHERE failed > 75 OR ports > 250;

CREATE MATERIALIZED VIEW possible_breaches AS
    SELECT c.src_ip, c.dst_port, c.ts, f.failed AS failures_before
    FROM (SELECT src_ip, window_start, window_end,
                 sum(CASE WHEN success THEN 0 ELSE 1 END) AS failed
          FROM TUMBLE(connections, ts, INTERVAL '10 seconds')
          GROUP BY src_ip, window_start, window_end) f
    JOIN connections c
      ON c.src_ip = f.src_ip
     AND c.ts BETWEEN f.window_end AND f.window_end + INTERVAL '10 seconds'
    WHERE f.failed > 75 AND c.success;

SELECT src_ip,
       count(*) AS suspect_windows,
       sum(failed) AS failed_logins,
       max(ports) AS most_ports_in_10s
FROM suspects
GROUP BY src_ip
ORDER BY suspect_windows DESC, failed_logins DESC
LIMIT 10;

SELECT src_ip, count(*) AS logins_after_failures, count(DISTINCT dst_port) AS ports,
       max(failures_before) AS most_failures_before
FROM possible_breaches
GROUP BY src_ip
ORDER BY logins_after_failures DESC, src_ip
LIMIT 10;
