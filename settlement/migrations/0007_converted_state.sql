-- Tonnes turned into carbon points (Art. 16) end in their own state, as retired or surrendered
-- tonnes do: they are never traded again, and the audit keeps them in the count of issuance.
ALTER TABLE holdings DROP CONSTRAINT holdings_state_check;
ALTER TABLE holdings ADD CONSTRAINT holdings_state_check
    CHECK (state IN ('free', 'locked', 'retired', 'surrendered', 'cancelled', 'converted'));
