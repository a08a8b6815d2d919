-- Queue records that could not become orders (malformed, or refused by MariaDB for
-- a reason other than being a duplicate). The order writer parks them here instead
-- of crashing or retrying them for ever, and acknowledges them in the queue; an
-- operator can read them back. See 001_catalog.sql for the conventions.

CREATE TABLE IF NOT EXISTS parked_records (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    -- Where the record came from, e.g. "sk:{item:7}:log 1700000000000-0".
    source      VARCHAR(512) NOT NULL,
    -- The record as the queue held it.
    raw         TEXT NOT NULL,
    -- Why it was parked.
    reason      VARCHAR(512) NOT NULL,
    parked_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    INDEX idx_parked_at (parked_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
