/* The paying side of orders in MariaDB; see payment_store.h.
 *
 * Statements are text: order numbers are checked for shape before they get here
 * (core/order_no.h) and every other string from outside (idempotency keys, trade
 * numbers, pay URLs, notify bodies) goes through mysql_real_escape_string on the
 * connection's own character set. */
#include "payment_store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/order_no.h"

#define IN_PROGRESS_STALE_S 15 /* a confirm that left no answer this long ago is redone */
#define SQL_MAX (3 * 8192)

static void say(char *err, size_t errlen, const char *fmt, ...) SK_PRINTF(3, 4);
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* An escaped copy of s (malloc'd; the caller frees), NULL on OOM. */
static char *esc(struct sk_db *db, const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len * 2 + 1);
    if (out != NULL)
        mysql_real_escape_string(db->conn, out, s, (unsigned long)len);
    return out;
}

static int valid_order_no(const char *order_no, char *err, size_t errlen)
{
    uint64_t item;
    if (order_no == NULL || sk_order_no_parse(order_no, strlen(order_no), &item) != SK_OK) {
        say(err, errlen, "not an order number");
        return SK_ERR;
    }
    return SK_OK;
}

static int exec(struct sk_db *db, const char *sql, char *err, size_t errlen)
{
    if (mysql_query(db->conn, sql) != 0) {
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        return SK_ERR;
    }
    return SK_OK;
}

/* Commit the transaction; SK_ERR with MariaDB's reason in err. */
static int commit(struct sk_db *db, char *err, size_t errlen)
{
    if (mysql_commit(db->conn) != 0) {
        say(err, errlen, "MariaDB: commit: %s", mysql_error(db->conn));
        return SK_ERR;
    }
    return SK_OK;
}

/* Run a query and return its result (caller frees), NULL with err on failure. */
static MYSQL_RES *query(struct sk_db *db, const char *sql, char *err, size_t errlen)
{
    MYSQL_RES *res;
    if (mysql_query(db->conn, sql) != 0 || (res = mysql_store_result(db->conn)) == NULL) {
        say(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        return NULL;
    }
    return res;
}

static void copy_field(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

int sk_store_confirm_begin(struct sk_db *db, const char *order_no, uint64_t user_id, const char *gateway,
                           const char *idem_key, int64_t now_ms, struct sk_confirm *out, char *err, size_t errlen)
{
    char sql[SQL_MAX];
    char *key = NULL, *gw = NULL;
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    struct sk_confirm c;
    int rc = SK_ERR, in_tx = 0;

    memset(&c, 0, sizeof(c));
    if (valid_order_no(order_no, err, errlen) != SK_OK)
        return SK_ERR;
    /* Idempotency keys are the buyer's own: stored as "<user>:<key>". */
    char scoped[256];
    snprintf(scoped, sizeof(scoped), "%llu:%s", (unsigned long long)user_id, idem_key);
    if ((key = esc(db, scoped)) == NULL || (gw = esc(db, gateway)) == NULL) {
        say(err, errlen, "out of memory");
        goto out;
    }
    if (exec(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    snprintf(sql, sizeof(sql), "SELECT order_no FROM orders WHERE order_no = '%s' FOR UPDATE", order_no);
    if ((res = query(db, sql, err, errlen)) == NULL)
        goto out;
    int found = mysql_num_rows(res) > 0;
    mysql_free_result(res);
    res = NULL;
    int got = found ? sk_store_order_get(db, order_no, &c.order, err, errlen) : SK_STORE_NOT_FOUND;
    if (got == SK_ERR)
        goto out;
    if (got == SK_STORE_NOT_FOUND || c.order.user_id != user_id) {
        c.state = SK_CONFIRM_NOT_FOUND;
        goto done;
    }
    if (strcmp(c.order.status, "paid") == 0) {
        c.state = SK_CONFIRM_PAID;
        goto done;
    }
    if (strcmp(c.order.status, "closed") == 0) {
        c.state = SK_CONFIRM_CLOSED;
        goto done;
    }
    if (c.order.expires_at_ms <= now_ms) {
        c.state = SK_CONFIRM_EXPIRED;
        goto done;
    }
    /* One trade per order: whatever key a repeat carries, it gets that trade. */
    snprintf(sql, sizeof(sql),
             "SELECT pay_url, qr_code, TIMESTAMPDIFF(SECOND, updated_at, NOW(3)) FROM payments "
             "WHERE order_no = '%s'",
             order_no);
    if ((res = query(db, sql, err, errlen)) == NULL)
        goto out;
    if ((row = mysql_fetch_row(res)) != NULL) {
        if (row[0] != NULL || row[1] != NULL) {
            c.state = SK_CONFIRM_DONE;
            copy_field(c.pay_url, sizeof(c.pay_url), row[0]);
            copy_field(c.qr_code, sizeof(c.qr_code), row[1]);
        } else if (row[2] != NULL && atoll(row[2]) < IN_PROGRESS_STALE_S) {
            c.state = SK_CONFIRM_IN_PROGRESS;
        } else {
            /* an earlier confirm died half-way: create the trade again (the gateway
             * answers the same trade for the same order number) */
            c.state = SK_CONFIRM_START;
            snprintf(sql, sizeof(sql), "UPDATE payments SET updated_at = NOW(3) WHERE order_no = '%s'", order_no);
            if (exec(db, sql, err, errlen) != SK_OK)
                goto out;
        }
        goto done;
    }
    mysql_free_result(res);
    res = NULL;
    snprintf(sql, sizeof(sql),
             "SELECT order_no FROM payments WHERE gateway = '%s' AND idempotency_key = '%s'", gw, key);
    if ((res = query(db, sql, err, errlen)) == NULL)
        goto out;
    if (mysql_num_rows(res) > 0) {
        c.state = SK_CONFIRM_KEY_REUSED;
        goto done;
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO payments (order_no, gateway, idempotency_key, status, amount_cents) "
             "VALUES ('%s', '%s', '%s', 'created', %" PRId64 ")",
             order_no, gw, key, c.order.amount_cents);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    c.state = SK_CONFIRM_START;
done:
    if (commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    *out = c;
    rc = SK_OK;
out:
    if (in_tx)
        mysql_rollback(db->conn);
    if (res)
        mysql_free_result(res);
    free(key);
    free(gw);
    return rc;
}

int sk_store_confirm_finish(struct sk_db *db, const char *order_no, const char *trade_no, const char *pay_url,
                            const char *qr_code, char *err, size_t errlen)
{
    char *sql = malloc(SQL_MAX * 2);
    char *t = NULL, *u = NULL, *q = NULL;
    int rc = SK_ERR, in_tx = 0;
    if (sql == NULL || valid_order_no(order_no, err, errlen) != SK_OK)
        goto out;
    if ((t = esc(db, trade_no ? trade_no : "")) == NULL || (u = esc(db, pay_url ? pay_url : "")) == NULL ||
        (q = esc(db, qr_code ? qr_code : "")) == NULL) {
        say(err, errlen, "out of memory");
        goto out;
    }
    if (exec(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    snprintf(sql, SQL_MAX * 2,
             "UPDATE payments SET trade_no = NULLIF('%s', ''), pay_url = NULLIF('%s', ''), "
             "qr_code = NULLIF('%s', ''), updated_at = NOW(3) WHERE order_no = '%s'",
             t, u, q, order_no);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    snprintf(sql, SQL_MAX * 2,
             "UPDATE orders SET status = 'paying', updated_at = NOW(3) WHERE order_no = '%s' AND status = 'created'",
             order_no);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    if (mysql_affected_rows(db->conn) == 0) {
        /* not `created` any more: paying already (a repeat) is fine, closed or
         * paid meanwhile is not */
        MYSQL_RES *res;
        MYSQL_ROW row;
        snprintf(sql, SQL_MAX * 2, "SELECT status FROM orders WHERE order_no = '%s'", order_no);
        if ((res = query(db, sql, err, errlen)) == NULL)
            goto out;
        row = mysql_fetch_row(res);
        int paying = row != NULL && row[0] != NULL && strcmp(row[0], "paying") == 0;
        mysql_free_result(res);
        if (!paying) {
            say(err, errlen, "order %s was closed or paid meanwhile", order_no);
            rc = SK_STORE_CONFLICT;
            goto out;
        }
    }
    if (commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    rc = SK_OK;
out:
    if (in_tx)
        mysql_rollback(db->conn);
    free(sql);
    free(t);
    free(u);
    free(q);
    return rc;
}

int sk_store_payment_info(struct sk_db *db, const char *order_no, char *pay_url, char *qr_code, char *err,
                          size_t errlen)
{
    char sql[256];
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc = SK_STORE_NOT_FOUND;
    if (valid_order_no(order_no, err, errlen) != SK_OK)
        return SK_ERR;
    snprintf(sql, sizeof(sql), "SELECT pay_url, qr_code FROM payments WHERE order_no = '%s'", order_no);
    if ((res = query(db, sql, err, errlen)) == NULL)
        return SK_ERR;
    if ((row = mysql_fetch_row(res)) != NULL && (row[0] != NULL || row[1] != NULL)) {
        copy_field(pay_url, SK_PAY_INFO_LEN, row[0]);
        copy_field(qr_code, SK_PAY_INFO_LEN, row[1]);
        rc = SK_OK;
    }
    mysql_free_result(res);
    return rc;
}

int sk_store_confirm_abort(struct sk_db *db, const char *order_no, char *err, size_t errlen)
{
    char sql[256];
    if (valid_order_no(order_no, err, errlen) != SK_OK)
        return SK_ERR;
    snprintf(sql, sizeof(sql),
             "DELETE FROM payments WHERE order_no = '%s' AND pay_url IS NULL AND qr_code IS NULL", order_no);
    return exec(db, sql, err, errlen);
}

int sk_store_payment_paid(struct sk_db *db, const char *gateway, const char *order_no, const char *trade_no,
                          int64_t amount_cents, const char *raw, enum sk_paid_result *result, char *refund_no,
                          int64_t *refund_cents, char *err, size_t errlen)
{
    char *sql = malloc(SQL_MAX * 2);
    char *gw = NULL, *t = NULL, *r = NULL;
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    int rc = SK_ERR, in_tx = 0;
    enum sk_paid_result out;

    if (sql == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    if (valid_order_no(order_no, err, errlen) != SK_OK) {
        *result = SK_PAID_UNKNOWN_ORDER;
        rc = SK_OK;
        goto out;
    }
    if ((gw = esc(db, gateway)) == NULL || (t = esc(db, trade_no ? trade_no : "")) == NULL ||
        (r = esc(db, raw ? raw : "")) == NULL) {
        say(err, errlen, "out of memory");
        goto out;
    }
    if (exec(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    snprintf(sql, SQL_MAX * 2, "SELECT status, amount_cents FROM orders WHERE order_no = '%s' FOR UPDATE", order_no);
    if ((res = query(db, sql, err, errlen)) == NULL)
        goto out;
    if ((row = mysql_fetch_row(res)) == NULL) {
        out = SK_PAID_UNKNOWN_ORDER;
        goto done;
    }
    if (row[1] == NULL || strtoll(row[1], NULL, 10) != amount_cents) {
        out = SK_PAID_AMOUNT_MISMATCH;
        goto done;
    }
    if (strcmp(row[0], "paid") == 0) {
        out = SK_PAID_ALREADY;
    } else if (strcmp(row[0], "closed") == 0) {
        /* Paid in the last second, after the order was closed (its unit may already
         * be resold): the money goes back, once. */
        out = SK_PAID_LATE;
        snprintf(refund_no, 64, "%s-R", order_no);
        *refund_cents = amount_cents;
        snprintf(sql, SQL_MAX * 2,
                 "INSERT IGNORE INTO refunds (refund_no, order_no, gateway, amount_cents, status, reason) "
                 "VALUES ('%s', '%s', '%s', %" PRId64 ", 'pending', 'paid after the order was closed')",
                 refund_no, order_no, gw, amount_cents);
        if (exec(db, sql, err, errlen) != SK_OK)
            goto out;
    } else {
        out = SK_PAID_NOW;
        snprintf(sql, SQL_MAX * 2,
                 "UPDATE orders SET status = 'paid', paid_at = NOW(3), updated_at = NOW(3) "
                 "WHERE order_no = '%s' AND status IN ('created', 'paying')",
                 order_no);
        if (exec(db, sql, err, errlen) != SK_OK)
            goto out;
    }
    /* The payment row (made by confirm, or now when the trade was paid some other
     * way) records the gateway's word. */
    snprintf(sql, SQL_MAX * 2,
             "INSERT INTO payments (order_no, gateway, idempotency_key, status, amount_cents, trade_no, notify_raw, "
             "notified_at, paid_at) VALUES ('%s', '%s', CONCAT('notify:', '%s'), 'paid', %" PRId64
             ", NULLIF('%s', ''), NULLIF('%s', ''), NOW(3), NOW(3)) "
             "ON DUPLICATE KEY UPDATE status = IF(status = 'refunded', status, 'paid'), "
             "trade_no = COALESCE(trade_no, VALUES(trade_no)), notify_raw = COALESCE(VALUES(notify_raw), notify_raw), "
             "notified_at = NOW(3), paid_at = COALESCE(paid_at, NOW(3)), updated_at = NOW(3)",
             order_no, gw, order_no, amount_cents, t, r);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
done:
    if (commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    *result = out;
    rc = SK_OK;
out:
    if (in_tx)
        mysql_rollback(db->conn);
    if (res)
        mysql_free_result(res);
    free(sql);
    free(gw);
    free(t);
    free(r);
    return rc;
}

/* Fill out[] from rows of (order_no, item_id, user_id, has_payment). */
static int due_list(struct sk_db *db, const char *sql, size_t limit, struct sk_due_order *out, size_t *n, char *err,
                    size_t errlen)
{
    MYSQL_RES *res = query(db, sql, err, errlen);
    MYSQL_ROW row;
    size_t k = 0;
    if (res == NULL)
        return SK_ERR;
    while ((row = mysql_fetch_row(res)) != NULL && k < limit) {
        copy_field(out[k].order_no, sizeof(out[k].order_no), row[0]);
        out[k].item_id = row[1] ? strtoull(row[1], NULL, 10) : 0;
        out[k].user_id = row[2] ? strtoull(row[2], NULL, 10) : 0;
        out[k].has_payment = row[3] != NULL && atoi(row[3]) != 0;
        k++;
    }
    mysql_free_result(res);
    *n = k;
    return SK_OK;
}

int sk_store_orders_due(struct sk_db *db, int64_t now_ms, size_t limit, struct sk_due_order *out, size_t *n,
                        char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT o.order_no, o.item_id, o.user_id, p.id IS NOT NULL FROM orders o "
             "LEFT JOIN payments p ON p.order_no = o.order_no "
             "WHERE o.status IN ('created', 'paying') AND o.expires_at <= FROM_UNIXTIME(%" PRId64 ".%03d) "
             "ORDER BY o.expires_at LIMIT %zu",
             now_ms / 1000, (int)(now_ms % 1000), limit);
    return due_list(db, sql, limit, out, n, err, errlen);
}

int sk_store_orders_stale_paying(struct sk_db *db, int64_t now_ms, int64_t older_ms, size_t limit,
                                 struct sk_due_order *out, size_t *n, char *err, size_t errlen)
{
    char sql[512];
    int64_t before = now_ms - older_ms;
    snprintf(sql, sizeof(sql),
             "SELECT o.order_no, o.item_id, o.user_id, 1 FROM orders o JOIN payments p ON p.order_no = o.order_no "
             "WHERE o.status = 'paying' AND p.updated_at <= FROM_UNIXTIME(%" PRId64 ".%03d) "
             "ORDER BY p.updated_at LIMIT %zu",
             before / 1000, (int)(before % 1000), limit);
    return due_list(db, sql, limit, out, n, err, errlen);
}

int sk_store_orders_unreturned(struct sk_db *db, size_t limit, struct sk_due_order *out, size_t *n, char *err,
                               size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT order_no, item_id, user_id, 0 FROM orders WHERE status = 'closed' AND unit_returned = 0 "
             "LIMIT %zu",
             limit);
    return due_list(db, sql, limit, out, n, err, errlen);
}

int sk_store_order_close(struct sk_db *db, const char *order_no, const char *reason, char *err, size_t errlen)
{
    char sql[512], *why = NULL;
    int rc = SK_ERR, in_tx = 0;
    if (valid_order_no(order_no, err, errlen) != SK_OK)
        return SK_ERR;
    if ((why = esc(db, reason)) == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    if (exec(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    snprintf(sql, sizeof(sql),
             "UPDATE orders SET status = 'closed', closed_at = NOW(3), close_reason = COALESCE(close_reason, LEFT('%s', 64)), "
             "updated_at = NOW(3) WHERE order_no = '%s' AND status IN ('created', 'paying')",
             why, order_no);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    if (mysql_affected_rows(db->conn) == 0) {
        rc = SK_STORE_CONFLICT;
        goto out;
    }
    snprintf(sql, sizeof(sql),
             "UPDATE payments SET status = 'closed', updated_at = NOW(3) WHERE order_no = '%s' AND status = 'created'",
             order_no);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    if (commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    rc = SK_OK;
out:
    if (in_tx)
        mysql_rollback(db->conn);
    free(why);
    return rc;
}

int sk_store_order_unit_returned(struct sk_db *db, const char *order_no, char *err, size_t errlen)
{
    char sql[256];
    if (valid_order_no(order_no, err, errlen) != SK_OK)
        return SK_ERR;
    snprintf(sql, sizeof(sql), "UPDATE orders SET unit_returned = 1 WHERE order_no = '%s' AND status = 'closed'",
             order_no);
    return exec(db, sql, err, errlen);
}

int sk_store_refunds_pending(struct sk_db *db, size_t limit, struct sk_pending_refund *out, size_t *n, char *err,
                             size_t errlen)
{
    char sql[256];
    MYSQL_RES *res;
    MYSQL_ROW row;
    size_t k = 0;
    snprintf(sql, sizeof(sql),
             "SELECT refund_no, order_no, amount_cents FROM refunds WHERE status = 'pending' "
             "AND (updated_at = created_at OR updated_at <= NOW(3) - INTERVAL 60 SECOND) ORDER BY id LIMIT %zu",
             limit);
    if ((res = query(db, sql, err, errlen)) == NULL)
        return SK_ERR;
    while ((row = mysql_fetch_row(res)) != NULL && k < limit) {
        copy_field(out[k].refund_no, sizeof(out[k].refund_no), row[0]);
        copy_field(out[k].order_no, sizeof(out[k].order_no), row[1]);
        out[k].amount_cents = row[2] ? strtoll(row[2], NULL, 10) : 0;
        k++;
    }
    mysql_free_result(res);
    *n = k;
    return SK_OK;
}

int sk_store_refund_done(struct sk_db *db, const char *refund_no, char *err, size_t errlen)
{
    char sql[512], *r = esc(db, refund_no);
    int rc = SK_ERR, in_tx = 0;
    if (r == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    if (exec(db, "START TRANSACTION", err, errlen) != SK_OK)
        goto out;
    in_tx = 1;
    snprintf(sql, sizeof(sql), "UPDATE refunds SET status = 'succeeded', updated_at = NOW(3) WHERE refund_no = '%s'",
             r);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    snprintf(sql, sizeof(sql),
             "UPDATE payments p JOIN refunds r ON r.order_no = p.order_no SET p.status = 'refunded', "
             "p.updated_at = NOW(3) WHERE r.refund_no = '%s'",
             r);
    if (exec(db, sql, err, errlen) != SK_OK)
        goto out;
    if (commit(db, err, errlen) != SK_OK)
        goto out;
    in_tx = 0;
    rc = SK_OK;
out:
    if (in_tx)
        mysql_rollback(db->conn);
    free(r);
    return rc;
}

int sk_store_refund_failed(struct sk_db *db, const char *refund_no, char *err, size_t errlen)
{
    char sql[512], *r = esc(db, refund_no);
    int rc;
    if (r == NULL) {
        say(err, errlen, "out of memory");
        return SK_ERR;
    }
    /* tried again a minute later; after a day it is left to an operator */
    snprintf(sql, sizeof(sql),
             "UPDATE refunds SET status = IF(created_at <= NOW(3) - INTERVAL 1 DAY, 'failed', 'pending'), "
             "updated_at = NOW(3) WHERE refund_no = '%s' AND status = 'pending'",
             r);
    rc = exec(db, sql, err, errlen);
    free(r);
    return rc;
}
