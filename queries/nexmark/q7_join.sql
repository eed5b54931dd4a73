-- Nexmark q7 in its join form, highest bid: the bids that carry the highest
-- price of their 10-second window. The windowed maximum is joined back to
-- the bids of that window: an interval join (a bid's time within the ten
-- seconds before its window's end), so each bid is freed once the
-- watermark is ten seconds past it.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 200000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q7_join AS
    SELECT b.auction, b.price, b.bidder, b.date_time, b.extra
    FROM bid AS b
    JOIN (SELECT max(price) AS maxprice, window_end AS wend
          FROM TUMBLE(bid, date_time, INTERVAL '10' SECOND)
          GROUP BY window_start, window_end) AS m
    ON b.price = m.maxprice
    WHERE b.date_time >= m.wend - INTERVAL '10' SECOND AND b.date_time < m.wend
WITH (connector = 'stdout');
