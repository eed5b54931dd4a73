-- Nexmark q1, currency conversion: every bid's price in euros.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 2000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q1 AS
    SELECT auction, bidder, 0.908 * price AS price, date_time, extra FROM bid
WITH (connector = 'stdout');
