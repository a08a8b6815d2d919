-- What the order closer needs: whether a closed order's unit went back to the stock
-- store (it is retried until it has: exactly once, as the stock store's release is
-- idempotent per order), and an index for the reconciliation of unpaid payments.
-- See 001_catalog.sql for the conventions.

ALTER TABLE orders ADD COLUMN IF NOT EXISTS unit_returned TINYINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD INDEX IF NOT EXISTS idx_orders_closed_unreturned (status, unit_returned);
ALTER TABLE payments ADD INDEX IF NOT EXISTS idx_payments_status_updated (status, updated_at);
