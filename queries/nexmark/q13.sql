-- Nexmark q13, bounded side input join: each bid with the value a side
-- input (a file of 10,000 keys) holds for its auction id modulo 10,000.
-- A lookup join (FOR SYSTEM_TIME AS OF the processing time) whose
-- looked-up input is bounded: the file is read whole before any bid is
-- matched, and only the file's rows are kept.
CREATE SOURCE bid
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 200000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SOURCE side_input (key BIGINT, value TEXT)
WITH (connector = 'file', path = 'queries/nexmark/data/side_input.csv', format = 'csv', header = true);

CREATE SINK q13 AS
    SELECT b.auction, b.bidder, b.price, b.date_time, side_input.value
    FROM bid AS b JOIN side_input FOR SYSTEM_TIME AS OF PROCTIME()
      ON b.auction % 10000 = side_input.key
WITH (connector = 'stdout');
