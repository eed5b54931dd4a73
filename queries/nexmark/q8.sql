-- Nexmark q8, monitor new users: the people who opened an auction in the
-- same 10-second window as they registered. A window join: two windowed
-- aggregates joined on their windows, so each window's rows are freed once
-- the watermark passes its end.
CREATE SOURCE person (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'person', events_per_second = 0, limit = 2000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SOURCE auction (WATERMARK FOR date_time AS date_time - INTERVAL '4 seconds')
WITH (connector = 'nexmark', table = 'auction', events_per_second = 0, limit = 6000, seed = 7,
      max_out_of_orderness = '2 seconds', start_time = '2026-03-01T12:00:00Z');

CREATE SINK q8 AS
    SELECT p.id, p.name, p.starttime
    FROM (SELECT id, name, window_start AS starttime, window_end AS endtime
          FROM TUMBLE(person, date_time, INTERVAL '10' SECOND)
          GROUP BY id, name, window_start, window_end) p
    JOIN (SELECT seller, window_start AS starttime, window_end AS endtime
          FROM TUMBLE(auction, date_time, INTERVAL '10' SECOND)
          GROUP BY seller, window_start, window_end) a
    ON p.id = a.seller AND p.starttime = a.starttime AND p.endtime = a.endtime
WITH (connector = 'stdout');
