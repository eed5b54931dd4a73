-- Nexmark q2, selection: the bids on a sample of auctions (ids divisible by 123).
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q2 AS
    SELECT auction, price FROM bid WHERE auction % 123 = 0
WITH (connector = 'stdout');
