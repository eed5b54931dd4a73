-- The seed pipeline's shape on the built-in generator: no Kafka needed.
--
--   cargo run -- run queries/demo.sql
--
-- 20,000 generated events over about ten seconds. Values above 100 are
-- doubled and summed per key; each change of a key's running sum is printed
-- on stdout as a JSON line with its changelog op. The raw events above 900
-- are also written to out/demo_big_values.jsonl.

CREATE SOURCE demo_events (
    key   TEXT,
    value BIGINT
) WITH (
    connector = 'datagen',
    rows_per_second = 2000,
    limit = 20000,
    seed = 42,
    fields.key.values = 'alpha,beta,gamma,delta,epsilon',
    fields.value.min = 0,
    fields.value.max = 1000
);

CREATE SINK running_sums AS
    SELECT key, sum(value * 2) AS total, count(*) AS events
    FROM demo_events
    WHERE value > 100
    GROUP BY key
WITH (connector = 'stdout', format = 'json');

CREATE SINK big_values AS
    SELECT key, value FROM demo_events WHERE value > 900
WITH (connector = 'file', path = 'out/demo_big_values.jsonl', format = 'json');
