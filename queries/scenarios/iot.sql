-- IoT: how is each device's temperature doing, which devices leave the
-- 10-40 °C band, and which go silent? Per device: readings over 1-minute
-- windows that slide every 10 s (average, lowest, highest), the windows that
-- leave the band, and sessions of readings with gaps under 30 s. A session
-- that ends before the data does means the device went silent for 30 s or
-- more. The out-of-band windows are joined with the devices' metadata
-- (site and model), and the last query counts them per site and model.
--
--   cargo run -- run queries/scenarios/iot.sql
--
-- 60,000 readings in about 3 s of wall time. They cover 50 min of event time
-- (one every 50 ms), at most 2 s out of order. There are 30 devices,
-- Zipf-skewed: device 1 sends a third of the readings, while devices 21-30
-- send one every few seconds and now and then fall silent for over 30 s.
-- Temperatures are 19-25 °C; one reading in a thousand is a faulty -40 or
-- 120.

CREATE SOURCE readings (
    device_id   BIGINT,
    temperature DOUBLE,
    ts          TIMESTAMP,
    WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
) WITH (
    connector = 'datagen',
    rows_per_second = 20000,
    limit = 60000,
    seed = 4,
    fields.device_id.min = 1,
    fields.device_id.max = 30,
    fields.device_id.skew = 1.2,
    fields.temperature.values = '19,20,21,22,23,24,25,-40,120',
    fields.temperature.weights = '5,10,20,30,20,10,5,0.05,0.05',
    fields.ts.kind = 'sequence',
    fields.ts.start = '2026-01-01 00:00:00',
    fields.ts.step = '50ms',
    fields.ts.max_lag = '2s'
);

-- Where each device is and what it is: one row per device.
CREATE SOURCE devices (
    device_id BIGINT,
    site      TEXT,
    model     TEXT
) WITH (
    connector = 'datagen',
    rows_per_second = 0,
    limit = 30,
    seed = 5,
    fields.device_id.kind = 'sequence',
    fields.device_id.start = 1,
    fields.site.values = 'north,south,east,west',
    fields.model.values = 'tx-100,tx-200,tx-300'
);

CREATE MATERIALIZED VIEW device_stats AS
    SELECT device_id, window_start, window_end,
           count(*) AS readings,
           avg(temperature) AS avg_temp,
           min(temperature) AS min_temp,
           max(temperature) AS max_temp
    FROM HOP(readings, ts, INTERVAL '10 seconds', INTERVAL '1 minute')
    GROUP BY device_id, window_start, window_end;

CREATE MATERIALIZED VIEW out_of_band AS
    SELECT device_id, window_start, window_end, min_temp, max_temp
    FROM device_stats
    WHERE min_temp < 10 OR max_temp > 40;

-- A session ends 30 s after its last reading.
-- The out-of-band windows with where the device is (a join with the
-- device metadata).
CREATE MATERIALIZED VIEW out_of_band_sites AS
    SELECT d.site, d.model, o.device_id, o.window_start, o.min_temp, o.max_temp
    FROM out_of_band o
    JOIN devices d ON o.device_id = d.device_id;

CREATE MATERIALIZED VIEW device_sessions AS
    SELECT device_id, window_start, window_end, count(*) AS readings
    FROM SESSION(readings, ts, INTERVAL '30 seconds')
    GROUP BY device_id, window_start, window_end;

-- Sessions that end before the generator's last event time (00:50:00): the
-- device sent nothing for at least 30 s after last_reading.
CREATE MATERIALIZED VIEW silences AS
    SELECT device_id, window_end - INTERVAL '30 seconds' AS last_reading, readings
    FROM device_sessions
    WHERE window_end < TIMESTAMP '2026-01-01 00:50:00';

SELECT device_id,
       count(*) AS windows_out_of_band,
       min(min_temp) AS lowest,
       max(max_temp) AS highest
FROM out_of_band
GROUP BY device_id
ORDER BY windows_out_of_band DESC, device_id
LIMIT 10;

SELECT device_id, count(*) AS silences, max(last_reading) AS last_went_silent
FROM silences
GROUP BY device_id
ORDER BY silences DESC, device_id
LIMIT 10;

SELECT site, model, count(*) AS windows_out_of_band, count(DISTINCT device_id) AS devices
FROM out_of_band_sites
GROUP BY site, model
ORDER BY windows_out_of_band DESC, site, model
LIMIT 10;
