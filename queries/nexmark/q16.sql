-- Nexmark q16, channel statistics per day: q15 per channel.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q16 AS
    SELECT channel, to_char(date_time, 'YYYY-MM-DD') AS day,
           max(to_char(date_time, 'HH24:MI')) AS minute,
           count(*) AS total_bids,
           count(*) FILTER (WHERE price < 10000) AS rank1_bids,
           count(*) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bids,
           count(*) FILTER (WHERE price >= 1000000) AS rank3_bids,
           count(DISTINCT bidder) AS total_bidders,
           count(DISTINCT bidder) FILTER (WHERE price < 10000) AS rank1_bidders,
           count(DISTINCT bidder) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_bidders,
           count(DISTINCT bidder) FILTER (WHERE price >= 1000000) AS rank3_bidders,
           count(DISTINCT auction) AS total_auctions,
           count(DISTINCT auction) FILTER (WHERE price < 10000) AS rank1_auctions,
           count(DISTINCT auction) FILTER (WHERE price >= 10000 AND price < 1000000) AS rank2_auctions,
           count(DISTINCT auction) FILTER (WHERE price >= 1000000) AS rank3_auctions
    FROM bid
    GROUP BY channel, to_char(date_time, 'YYYY-MM-DD')
WITH (connector = 'stdout');
