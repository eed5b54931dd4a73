-- Nexmark q7, highest bid: the highest price bid in each 10-second window.
-- (Nexmark's q7 joins back to find the bid itself; this is its join-free
-- form.)
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 200000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q7 AS
    SELECT window_start, window_end, max(price) AS maxprice
    FROM TUMBLE(bid, date_time, INTERVAL '10 seconds')
    GROUP BY window_start, window_end
WITH (connector = 'stdout');
