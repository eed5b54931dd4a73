-- Nexmark q17, auction statistics per day: bids in three price ranges and
-- the lowest, highest, average and total price, per auction and day.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q17 AS
    SELECT auction, to_char(date_time, 'YYYY-MM-DD') AS day,
           count(*) AS total_bids,
           count(*) FILTER (WHERE price < 10000) AS rank1_bids,
           count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
           count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
           min(price) AS min_price, max(price) AS max_price,
           avg(price) AS avg_price, sum(price) AS sum_price
    FROM bid
    GROUP BY auction, to_char(date_time, 'YYYY-MM-DD')
WITH (connector = 'stdout');
