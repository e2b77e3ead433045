-- An amended order's reservation grown (positive) or trimmed (negative), once per adjustment id
-- (the journal sequence number of the amend), so a replayed batch adjusts nothing twice.
CREATE TABLE order_adjusts (
    adjust_id bigint PRIMARY KEY,
    order_id bigint NOT NULL,
    account_id bigint NOT NULL,
    quantity_t bigint NOT NULL,
    amount_fen bigint NOT NULL,
    txn_id bigint NOT NULL,
    CHECK ((quantity_t = 0) <> (amount_fen = 0))
);
