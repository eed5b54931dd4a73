-- Nexmark q3, local item suggestion: who is selling in category 10 in
-- Oregon, Idaho or California: each new auction joined with its seller.
-- A regular join: every person and auction is kept (the state grows with
-- the stream), so a person who registers after their auction still matches.
CREATE SOURCE person (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'person', events_per_second = 0, limit = 2000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SOURCE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'auction', events_per_second = 0, limit = 6000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q3 AS
    SELECT p.name, p.city, p.state, a.id
    FROM auction AS a JOIN person AS p ON a.seller = p.id
    WHERE a.category = 10 AND (p.state = 'OR' OR p.state = 'ID' OR p.state = 'CA')
WITH (connector = 'stdout');
