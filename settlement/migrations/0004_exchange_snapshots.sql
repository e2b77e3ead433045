-- The exchange's whole state after journal entry `seq` (books, live orders, client order ids,
-- the schedule's progress), msgpack-encoded exchange.snapshots.ExchangeSnapshot. A start restores
-- the newest and replays the journal after it. One snapshot covers every book, so the per-book
-- table planned before is dropped unused.
DROP TABLE book_snapshots;

CREATE TABLE exchange_snapshots (
    seq bigint PRIMARY KEY,
    body bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
