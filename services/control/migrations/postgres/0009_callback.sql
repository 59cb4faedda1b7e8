-- Callbacks in the contract (issue 22): the customer's number, the window
-- and the dials made, as JSON (domain::callback::Callback). The number is
-- the customer's: the retention purge sets the column to NULL.
ALTER TABLE handoffs ADD COLUMN callback TEXT;
