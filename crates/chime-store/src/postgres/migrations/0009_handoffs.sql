-- Handoffs (issue 24): each `execute_task` is also kept here, under its handoff id (the
-- occurrence, and an escalation step's channel), from the transaction that fires it until a
-- notification instance has recorded its deliveries. The instance that consumes the event
-- from the bus removes it in the transaction that records them, normally within a second. One
-- that nobody has recorded a few seconds after it fired (its consumer died or was cut off, and
-- the broker has not moved its partitions yet) is claimed by any notification instance for a
-- lease and recorded from here, so a dead consumer does not hold an occurrence back for the
-- broker's session timeout and rebalance. Deliveries are unique per (occurrence, channel,
-- target), so an event recorded both ways makes its deliveries once.
-- `at` and `claimed_until` are microseconds of the database's clock, so the instances' clocks
-- do not matter.
CREATE TABLE handoffs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    payload       BYTEA NOT NULL,
    at            BIGINT NOT NULL,
    claimed_until BIGINT
);
CREATE INDEX handoffs_by_age ON handoffs (at);
