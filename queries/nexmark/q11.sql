-- Nexmark q11, user sessions: how many bids each bidder made in each
-- session of activity (a session ends after 10 seconds without a bid).
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q11 AS
    SELECT bidder, count(*) AS bid_count, window_start, window_end
    FROM SESSION(bid, date_time, INTERVAL '10 seconds')
    GROUP BY bidder, window_start, window_end
WITH (connector = 'stdout');
