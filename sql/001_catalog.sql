-- Activities (flash sales) and the items they put on offer.
--
-- Conventions for every migration in sql/ (see docs/schema.md):
--   * statements end with ";" at the end of a line, and only there: the migration
--     runner splits on it, so no line inside a statement or a comment ends with ";".
--   * money is integer cents (BIGINT), times are DATETIME(3) holding UTC (every
--     session of the daemon runs with time_zone '+00:00').
--   * InnoDB and utf8mb4 for every table, so that names and titles in any script
--     (e.g. Chinese) round-trip.
--   * CREATE … IF NOT EXISTS, so that a migration interrupted half-way (DDL commits
--     implicitly) can simply be run again.

CREATE TABLE IF NOT EXISTS activities (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name        VARCHAR(256) NOT NULL,
    -- The order of the values is the order of enum sk_activity_state.
    state       ENUM('draft','scheduled','published','running','ended','cancelled') NOT NULL DEFAULT 'draft',
    -- NULL: no publish time set (the operator publishes by hand).
    publish_at  DATETIME(3) NULL,
    starts_at   DATETIME(3) NOT NULL,
    ends_at     DATETIME(3) NOT NULL,
    created_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    -- The scheduler's question: which scheduled activities are due to publish.
    INDEX idx_activities_state_publish (state, publish_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS items (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    activity_id         BIGINT UNSIGNED NOT NULL,
    -- Compared byte for byte (no case folding, no trailing-space padding), so the
    -- unique key below agrees with what the daemon and the operator see as equal.
    sku                 VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    title               VARCHAR(256) NOT NULL,
    price_cents         BIGINT NOT NULL,
    seckill_price_cents BIGINT NOT NULL,
    -- The initial stock as created; the live stock is in Redis once published.
    stock               INT NOT NULL,
    per_user_limit      INT UNSIGNED NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    -- One sku once per activity: a buyer's (activity, sku) names one item.
    UNIQUE KEY uq_items_activity_sku (activity_id, sku),
    CONSTRAINT fk_items_activity FOREIGN KEY (activity_id) REFERENCES activities (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
