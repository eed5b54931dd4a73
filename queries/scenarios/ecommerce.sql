-- E-commerce: which products are viewed and bought most right now, and who
-- are the most active shoppers? Product activity is counted over 5-minute
-- windows that slide every minute. User activity is a running total per user
-- (not windowed). The final queries show the top products of the last
-- complete window and the ten most active users. A purchase that follows a
-- view of the same product by the same user within 5 minutes is a
-- conversion (an interval join of the events with themselves); the last
-- query ranks products by them.
--
--   cargo run -- run queries/scenarios/ecommerce.sql
--
-- 100,000 shop events in about 5 s of wall time. They cover 16 min 40 s of
-- event time (one every 10 ms), at most 2 s out of order. Products and users
-- are Zipf-skewed. Actions are 85 % view, 10 % cart and 5 % purchase.

CREATE SOURCE shop_events (
    user_id BIGINT,
    product TEXT,
    action  TEXT,
    ts      TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (
    connector = 'datagen',
    rows_per_second = 20000,
    limit = 100000,
    seed = 2,
    fields.user_id.min = 1,
    fields.user_id.max = 5000,
    fields.user_id.skew = 0.7,
    fields.product.values = 'phone,laptop,headphones,charger,case,monitor,keyboard,mouse,webcam,speaker,tablet,watch',
    fields.product.skew = 1.0,
    fields.action.values = 'view,cart,purchase',
    fields.action.weights = '85,10,5',
    fields.ts.kind = 'sequence',
    fields.ts.start = '2026-01-01 00:00:00',
    fields.ts.step = '10ms',
    fields.ts.max_lag = '2s'
);

CREATE MATERIALIZED VIEW product_activity AS
    SELECT product, window_start, window_end,
           sum(CASE WHEN action = 'view' THEN 1 ELSE 0 END) AS views,
           sum(CASE WHEN action = 'cart' THEN 1 ELSE 0 END) AS carts,
           sum(CASE WHEN action = 'purchase' THEN 1 ELSE 0 END) AS purchases
    FROM HOP(shop_events, ts, INTERVAL '1 minute', INTERVAL '5 minutes')
    GROUP BY product, window_start, window_end;

CREATE MATERIALIZED VIEW user_activity AS
    SELECT user_id,
           count(*) AS events,
           sum(CASE WHEN action = 'purchase' THEN 1 ELSE 0 END) AS purchases,
           max(ts) AS last_seen
    FROM shop_events
    GROUP BY user_id;

CREATE MATERIALIZED VIEW conversions AS
    SELECT p.product, p.user_id, p.ts AS bought_at, v.ts AS viewed_at
    FROM shop_events p
    JOIN shop_events v
      ON p.user_id = v.user_id AND p.product = v.product
     AND v.ts BETWEEN p.ts - INTERVAL '5 minutes' AND p.ts
    WHERE p.action = 'purchase' AND v.action = 'view';

-- The last complete window ends where the last window starts: the windows
-- after it end past the last event and hold less than 5 minutes of data.
SELECT product, window_start, window_end, views, purchases,
       round(100.0 * purchases / views, 1) AS purchase_per_100_views
FROM product_activity
WHERE window_end = (SELECT max(window_start) FROM product_activity)
ORDER BY purchases DESC, views DESC
LIMIT 10;

SELECT user_id, events, purchases, last_seen
FROM user_activity
ORDER BY events DESC
LIMIT 10;

SELECT product, count(DISTINCT user_id) AS buyers, count(DISTINCT bought_at) AS purchases,
       count(*) AS views_before_buying
FROM conversions
GROUP BY product
ORDER BY buyers DESC, product
LIMIT 10;
