-- Nexmark q22, URL directories: each bid with the first three directories
-- of its URL split out.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 2000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q22 AS
    SELECT auction, bidder, price, channel,
           split_part(url, '/', 4) AS dir1,
           split_part(url, '/', 5) AS dir2,
           split_part(url, '/', 6) AS dir3
    FROM bid
WITH (connector = 'stdout');
