-- Not a numbered Nexmark query: each bid with its auction while the
-- auction is at most 10 seconds old. An interval join: rows are freed as
-- the watermark passes the bound, so the state stays at about 10 seconds
-- of auctions and the bids the watermark has not passed yet
-- (benches/interval_join_soak.sh runs it for 10 minutes).
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SOURCE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'auction', events_per_second = 0, limit = 3300, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK interval_join AS
    SELECT b.auction, b.price, b.bidder, a.seller, a.category
    FROM bid AS b JOIN auction AS a ON b.auction = a.id
     AND b.date_time BETWEEN a.date_time AND a.date_time + INTERVAL '10' SECOND
WITH (connector = 'stdout');
