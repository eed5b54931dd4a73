-- Nexmark q0, pass-through: every bid, unchanged. Measures the cost of
-- moving rows through the engine.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 2000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q0 AS
    SELECT auction, bidder, price, date_time, extra FROM bid
WITH (connector = 'stdout');
