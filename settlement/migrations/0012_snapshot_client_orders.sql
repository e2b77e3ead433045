-- A snapshot's client order ids, stored once: rows of consecutive client orders (by their place
-- in the engine's list, which is only ever appended to), each written with the first snapshot
-- holding them. exchange_snapshots.body now says how many client orders the snapshot holds.
-- Snapshots in the older form, with every client order in the body, are dropped: the journal is
-- whole, so the next start replays it and writes a snapshot in the new form.
CREATE TABLE exchange_client_orders (
    first_index bigint PRIMARY KEY,
    size integer NOT NULL CHECK (size > 0),
    body bytea NOT NULL
);

DELETE FROM exchange_snapshots;
