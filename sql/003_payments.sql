-- Payments at a gateway and the refunds of late payments.
-- See 001_catalog.sql for the conventions.

CREATE TABLE IF NOT EXISTS payments (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    order_no        VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gateway         VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- The gateway's own number for the trade (Alipay trade_no), once known.
    trade_no        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    -- The buyer's Idempotency-Key header of the confirm call.
    idempotency_key VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    status          ENUM('created','paid','closed','refunded') NOT NULL DEFAULT 'created',
    amount_cents    BIGINT NOT NULL,
    -- What the buyer needs to pay: one of the two, as the gateway answered.
    pay_url         TEXT NULL,
    qr_code         TEXT NULL,
    -- The last asynchronous notify as received (form body), for audits.
    notify_raw      TEXT NULL,
    notified_at     DATETIME(3) NULL,
    paid_at         DATETIME(3) NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    -- One trade per order: a repeated confirm finds the payment it already made.
    UNIQUE KEY uq_payments_order_no (order_no),
    -- A repeated confirm with the same key gets the same answer, never a second trade.
    UNIQUE KEY uq_payments_idempotency (gateway, idempotency_key),
    -- A notify names the gateway's trade; NULLs (not yet known) do not collide.
    UNIQUE KEY uq_payments_trade_no (gateway, trade_no),
    CONSTRAINT fk_payments_order FOREIGN KEY (order_no) REFERENCES orders (order_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS refunds (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- Our request number at the gateway (Alipay out_request_no): retrying a refund
    -- with the same number never refunds twice at the gateway.
    refund_no       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    order_no        VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    gateway         VARCHAR(48) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    amount_cents    BIGINT NOT NULL,
    status          ENUM('pending','succeeded','failed') NOT NULL DEFAULT 'pending',
    reason          VARCHAR(256) NULL,
    created_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at      DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    UNIQUE KEY uq_refunds_refund_no (refund_no),
    -- A late payment of a closed order is refunded once, however often it is noticed.
    UNIQUE KEY uq_refunds_order_no (order_no),
    CONSTRAINT fk_refunds_order FOREIGN KEY (order_no) REFERENCES orders (order_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
