-- Nexmark q14, calculation: expensive bids in euros, labelled by the time of
-- day they were made, with the number of 'c' characters in their extra field.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q14 AS
    SELECT auction, bidder, 0.908 * price AS price,
           CASE
               WHEN extract(hour FROM date_time) >= 8 AND extract(hour FROM date_time) <= 18 THEN 'dayTime'
               WHEN extract(hour FROM date_time) <= 6 OR extract(hour FROM date_time) >= 20 THEN 'nightTime'
               ELSE 'otherTime'
           END AS bid_time_type,
           date_time, extra,
           length(extra) - length(replace(extra, 'c', '')) AS c_counts
    FROM bid
    WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000
WITH (connector = 'stdout');
