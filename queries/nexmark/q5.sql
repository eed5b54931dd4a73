-- Nexmark q5, hot items: the number of bids per auction in each 10-second
-- window sliding every 2 seconds, for auctions with more than 20 bids in the
-- window. (Nexmark's q5 then keeps the auction with the most bids per window,
-- which needs a join; this is its join-free core.)
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 200000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q5 AS
    SELECT auction, window_start, window_end, count(*) AS num
    FROM HOP(bid, date_time, INTERVAL '2 seconds', INTERVAL '10 seconds')
    GROUP BY auction, window_start, window_end
    HAVING count(*) > 20
WITH (connector = 'stdout');
