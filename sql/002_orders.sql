-- Orders: one row per unit sold, written by the order pipeline from the queue.
-- See 001_catalog.sql for the conventions.

CREATE TABLE IF NOT EXISTS orders (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- Made by the daemon at reservation time and given to the buyer at once.
    order_no        VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    activity_id     BIGINT UNSIGNED NOT NULL,
    item_id         BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    -- The buyer's n-th unit of this item, 1..per_user_limit (taken in Redis).
    seq             INT UNSIGNED NOT NULL,
    status          ENUM('reserved','created','paying','paid','closed') NOT NULL DEFAULT 'created',
    amount_cents    BIGINT NOT NULL,
    reserved_at     DATETIME(3) NOT NULL,
    -- Payment deadline: reserved_at + order_timeout.
    expires_at      DATETIME(3) NOT NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    paid_at         DATETIME(3) NULL,
    closed_at       DATETIME(3) NULL,
    -- Why it was closed: "timeout", "admin", "cancelled", …
    close_reason    VARCHAR(64) NULL,
    PRIMARY KEY (id),
    -- At-least-once delivery from the queue, exactly-once effect: a redelivered
    -- reservation hits one of these two keys instead of making a second order.
    UNIQUE KEY uq_orders_order_no (order_no),
    UNIQUE KEY uq_orders_slot (activity_id, item_id, user_id, seq),
    -- The closer's question: which unpaid orders are past their deadline.
    INDEX idx_orders_status_expires (status, expires_at),
    -- Per-item counts by status (live stock view: reserved, paid).
    INDEX idx_orders_item_status (item_id, status),
    CONSTRAINT fk_orders_activity FOREIGN KEY (activity_id) REFERENCES activities (id),
    CONSTRAINT fk_orders_item FOREIGN KEY (item_id) REFERENCES items (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
