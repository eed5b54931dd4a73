-- The README's quickstart, statement by statement. tests/server/quickstart.rs
-- runs these statements through psql against `sluice serve` and checks that
-- the output has the shape the README shows.

CREATE SOURCE clicks (user_id BIGINT, page TEXT) WITH (
    connector = 'datagen', rows_per_second = 10, seed = 7,
    fields.user_id.min = 1, fields.user_id.max = 50,
    fields.page.values = 'home,cart,checkout', fields.page.weights = '70,20,10');

CREATE MATERIALIZED VIEW page_stats AS
    SELECT page, count(*) AS views, count(DISTINCT user_id) AS users
    FROM clicks
    GROUP BY page;

SELECT * FROM page_stats ORDER BY page;

COPY (SUBSCRIBE TO page_stats) TO STDOUT;

DROP SOURCE clicks CASCADE;
