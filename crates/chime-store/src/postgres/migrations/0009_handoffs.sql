-- Handoffs (issue 24): each `execute_task` is also kept here, under its handoff id (the
-- occurrence, and an escalation step's channel), from the transaction that fires it until a
-- notification instance has recorded its deliveries.
-- - The instance that consumes the event from the bus deletes it in the transaction that
--   records them, normally within a second.
-- - One that nobody has recorded a few seconds after it fired (its consumer died or was cut
--   off, and the broker has not moved its partitions yet) is claimed by any notification
--   instance for a lease (`claimed_until`) and recorded from here; it then stays, marked
--   `recorded_at` and without its payload, so that the consumer that gets the event from the
--   bus later skips it instead of recording it again, and deletes it. One the bus never brings
--   is swept an hour after it was recorded.
-- Deliveries are unique per (occurrence, channel, target), so an event recorded both ways
-- makes its deliveries once whatever the order. `at`, `claimed_until` and `recorded_at` are
-- microseconds of the database's clock, so the instances' clocks do not matter.
CREATE TABLE handoffs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    payload       BYTEA NOT NULL,
    at            BIGINT NOT NULL,
    claimed_until BIGINT,
    recorded_at   BIGINT
);
CREATE INDEX handoffs_waiting ON handoffs (at) WHERE recorded_at IS NULL;
CREATE INDEX handoffs_recorded ON handoffs (recorded_at) WHERE recorded_at IS NOT NULL;
