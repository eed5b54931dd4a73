-- Nexmark q20, expand bid with auction: every bid on an auction of
-- category 10, with that auction's details. A regular join: the auctions
-- and bids are kept, so a bid that arrives before its auction still
-- matches when the auction does.
CREATE SOURCE bid (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'bid', events_per_second = 0, limit = 50000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SOURCE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'auction', events_per_second = 0, limit = 3300, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q20 AS
    SELECT b.auction, b.bidder, b.price, b.channel, b.url, b.date_time AS bid_time, b.extra AS bid_extra,
           a.item_name, a.description, a.initial_bid, a.reserve, a.date_time AS auction_time,
           a.expires, a.seller, a.category, a.extra AS auction_extra
    FROM bid AS b JOIN auction AS a ON b.auction = a.id
    WHERE a.category = 10
WITH (connector = 'stdout');
