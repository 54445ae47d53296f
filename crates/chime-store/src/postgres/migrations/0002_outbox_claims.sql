-- Relays of several processes share the outbox: each claims a batch for a lease
-- (`OutboxStore::outbox_claim`), so an event is published by one relay at a time, and a
-- relay that died leaves its claims to run out. `claimed_until` is in microseconds of the
-- database's clock, so the instances' clocks do not matter.
ALTER TABLE outbox
    ADD COLUMN claimed_by    TEXT,
    ADD COLUMN claimed_until BIGINT;

-- An event waits while an older event with its key is claimed by another relay, so one
-- task's events reach the bus in order; this finds the older ones.
CREATE INDEX outbox_key_seq ON outbox (key, seq);
