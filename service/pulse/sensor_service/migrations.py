"""The PostgreSQL schema of the shared sensor state, as numbered migrations applied in order at
start-up. A migration, once released, never changes: a change is a new migration.

``pulse_record_reading`` does a reading's whole work in one round trip and one transaction:
insert by id (a known id changes nothing), then, holding the sensor's summary row lock so
concurrent readings of one sensor on several replicas queue up, recompute the summary over the
newest ``window_size`` readings by reading time, give it the next revision and NOTIFY it.
Each statement of a PL/pgSQL function sees what committed before it started, so the summary
includes every reading whose transaction held the lock before this one.
"""

from __future__ import annotations

__all__ = ["CHANNEL", "LOCK_KEY", "MIGRATIONS", "TABLE"]

# The LISTEN/NOTIFY channel of new summaries.
CHANNEL = "pulse_sensor_summaries"
# pg_advisory_lock key held while migrating, so replicas starting at once migrate one by one
# (the first 8 bytes of "pulse.se" read as a big-endian signed integer).
LOCK_KEY = int.from_bytes(b"pulse.se", "big", signed=True)
TABLE = "pulse_schema_migrations"

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "readings, summaries and the record function",
        f"""
CREATE TABLE sensor_readings (
    id text PRIMARY KEY,
    sensor_id text NOT NULL,
    time_ns bigint NOT NULL,
    temperature double precision NOT NULL
);
CREATE INDEX sensor_readings_newest ON sensor_readings (sensor_id, time_ns DESC, id DESC);

CREATE TABLE sensor_summaries (
    sensor_id text PRIMARY KEY,
    readings_total bigint NOT NULL,
    min_temperature double precision NOT NULL,
    max_temperature double precision NOT NULL,
    avg_temperature double precision NOT NULL,
    window_size integer NOT NULL,
    newest_ns bigint NOT NULL,
    revision bigint NOT NULL
);
CREATE SEQUENCE sensor_summary_revisions;

CREATE FUNCTION pulse_record_reading(
    reading_id text,
    reading_sensor text,
    reading_time bigint,
    reading_temperature double precision,
    newest integer
) RETURNS SETOF sensor_summaries
LANGUAGE plpgsql AS $$
DECLARE
    summary sensor_summaries;
BEGIN
    INSERT INTO sensor_readings (id, sensor_id, time_ns, temperature)
        VALUES (reading_id, reading_sensor, reading_time, reading_temperature)
        ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN;  -- a known id: nothing changes and no one is told
    END IF;
    INSERT INTO sensor_summaries AS s
        VALUES (reading_sensor, 1, reading_temperature, reading_temperature,
                reading_temperature, 1, reading_time, 0)
        ON CONFLICT (sensor_id) DO UPDATE SET readings_total = s.readings_total + 1;
    UPDATE sensor_summaries AS s
        SET min_temperature = w.low,
            max_temperature = w.high,
            avg_temperature = w.mean,
            window_size = w.size,
            newest_ns = w.newest,
            revision = nextval('sensor_summary_revisions')
        FROM (
            SELECT min(temperature) AS low, max(temperature) AS high,
                   avg(temperature) AS mean, count(*) AS size, max(time_ns) AS newest
            FROM (
                SELECT temperature, time_ns FROM sensor_readings
                WHERE sensor_id = reading_sensor
                ORDER BY time_ns DESC, id DESC
                LIMIT newest
            ) AS latest
        ) AS w
        WHERE s.sensor_id = reading_sensor
        RETURNING s.* INTO summary;
    PERFORM pg_notify('{CHANNEL}', row_to_json(summary)::text);
    RETURN NEXT summary;
END
$$;
""",
    ),
)
