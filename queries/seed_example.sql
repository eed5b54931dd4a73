-- The seed pipeline: JSON records {"key": ..., "value": n} arrive on the
-- Kafka topic `test_topic`. Keep the records with value > 100, double the
-- value, keep a running sum per key, and write every change of a key's sum
-- to `aggregated_topic` with the key as the message key.
--
--   sluice run queries/seed_example.sql
--
-- Needs a broker on localhost:9092 (bash ../shared/kafka/start-broker.sh).

CREATE SOURCE events (
    key   TEXT,
    value BIGINT
) WITH (
    connector = 'kafka',
    topic = 'test_topic',
    bootstrap_servers = 'localhost:9092',
    group_id = 'sluice-seed-example',
    start_from = 'earliest',
    format = 'json',
    -- records that are not valid JSON of this shape go here, verbatim
    dead_letter_topic = 'test_topic_dead_letter'
);

CREATE SINK aggregated AS
    SELECT key, sum(value * 2) AS total
    FROM events
    WHERE value > 100
    GROUP BY key
WITH (
    connector = 'kafka',
    topic = 'aggregated_topic',
    bootstrap_servers = 'localhost:9092',
    format = 'json'
);
