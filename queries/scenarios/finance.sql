-- Finance: which accounts spend abnormally fast? Per account and minute of
-- event time: the number of payments, the amount and the merchants. A minute
-- with more than 250 payments or over 75,000 spent is risky; the final query
-- ranks accounts by their risky spend. Each account's per-payment limit
-- changes over time; every payment is checked against the limit in force
-- when it was made (a temporal join in event time), and the payments over
-- it are counted per account.
--
--   cargo run -- run queries/scenarios/finance.sql
--
-- 80,000 payments in about 4 s of wall time. They cover 13 min 20 s of event
-- time (one every 10 ms), at most 2 s out of order. Accounts are Zipf-skewed,
-- so a few hot accounts make most of the payments.

CREATE SOURCE payments (
    account  BIGINT,
    amount   DOUBLE,
    merchant TEXT,
    ts       TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (
    connector = 'datagen',
    rows_per_second = 20000,
    limit = 80000,
    seed = 1,
    fields.account.min = 1,
    fields.account.max = 1000,
    fields.account.skew = 1.1,
    fields.amount.min = 1,
    fields.amount.max = 500,
    fields.merchant.values = 'grocery,fuel,restaurant,electronics,travel,pharmacy,gift_cards,crypto',
    fields.merchant.weights = '30,20,20,10,5,10,2,3',
    fields.ts.kind = 'sequence',
    fields.ts.start = '2026-01-01 00:00:00',
    fields.ts.step = '10ms',
    fields.ts.max_lag = '2s'
);

-- A new per-payment limit for some account every 100 ms of event time.
CREATE SOURCE account_limits (
    account     BIGINT,
    max_payment DOUBLE,
    ts          TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (
    connector = 'datagen',
    rows_per_second = 2000,
    limit = 8000,
    seed = 11,
    fields.account.min = 1,
    fields.account.max = 1000,
    fields.account.skew = 1.1,
    fields.max_payment.values = '100,200,300,400',
    fields.ts.kind = 'sequence',
    fields.ts.start = '2026-01-01 00:00:00',
    fields.ts.step = '100ms'
);

CREATE MATERIALIZED VIEW over_limit AS
    SELECT p.account, p.amount, l.max_payment, p.ts
    FROM payments p
    JOIN account_limits FOR SYSTEM_TIME AS OF p.ts AS l ON p.account = l.account
    WHERE p.amount > l.max_payment;

CREATE MATERIALIZED VIEW account_spend AS
    SELECT account, window_start, window_end,
           count(*) AS payments,
           sum(amount) AS total,
           max(amount) AS largest,
           count(DISTINCT merchant) AS merchants
    FROM TUMBLE(payments, ts, INTERVAL '1 minute')
    GROUP BY account, window_start, window_end;

CREATE MATERIALIZED VIEW risky_minutes AS
    SELECT account, window_start, window_end, payments, total, merchants
    FROM account_spend
    WHERE payments > 250 OR total > 75000;

SELECT account,
       count(*) AS risky_minutes,
       round(sum(total)) AS risky_spend,
       max(payments) AS peak_payments_per_minute
FROM risky_minutes
GROUP BY account
ORDER BY risky_spend DESC
LIMIT 10;

SELECT account, count(*) AS payments_over_limit, round(sum(amount - max_payment)) AS over_by
FROM over_limit
GROUP BY account
ORDER BY payments_over_limit DESC, account
LIMIT 10;
