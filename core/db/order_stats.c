/* Order figures per item; see order_stats.h. */
#include "order_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sk_store_order_counts(struct sk_db *db, uint64_t activity_id, const char *status, const uint64_t *item_ids,
                          int64_t *counts, size_t n, char *err, size_t errlen)
{
    static const char sql[] =
        "SELECT item_id, COUNT(*) FROM orders WHERE activity_id = ? AND status = ? GROUP BY item_id";
    int rc = SK_ERR;
    MYSQL_STMT *st = mysql_stmt_init(db->conn);
    if (st == NULL) {
        snprintf(err, errlen, "MariaDB: out of memory");
        return SK_ERR;
    }
    unsigned long long aid = activity_id;
    unsigned long status_len = (unsigned long)strlen(status);
    MYSQL_BIND in[2];
    memset(in, 0, sizeof(in));
    in[0].buffer_type = MYSQL_TYPE_LONGLONG;
    in[0].buffer = &aid;
    in[0].is_unsigned = 1;
    in[1].buffer_type = MYSQL_TYPE_STRING;
    in[1].buffer = (char *)status;
    in[1].buffer_length = status_len;
    in[1].length = &status_len;

    unsigned long long item = 0;
    long long count = 0;
    MYSQL_BIND out[2];
    memset(out, 0, sizeof(out));
    out[0].buffer_type = MYSQL_TYPE_LONGLONG;
    out[0].buffer = &item;
    out[0].is_unsigned = 1;
    out[1].buffer_type = MYSQL_TYPE_LONGLONG;
    out[1].buffer = &count;

    if (mysql_stmt_prepare(st, sql, sizeof(sql) - 1) != 0 || mysql_stmt_bind_param(st, in) != 0 ||
        mysql_stmt_execute(st) != 0 || mysql_stmt_bind_result(st, out) != 0) {
        snprintf(err, errlen, "MariaDB: %s", mysql_stmt_error(st));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        counts[i] = 0;
    int f;
    while ((f = mysql_stmt_fetch(st)) == 0) {
        for (size_t i = 0; i < n; i++)
            if (item_ids[i] == item)
                counts[i] = count;
    }
    if (f != MYSQL_NO_DATA) {
        snprintf(err, errlen, "MariaDB: %s", mysql_stmt_error(st));
        goto out;
    }
    rc = SK_OK;
out:
    mysql_stmt_close(st);
    return rc;
}

const char *const sk_order_status_names[SK_ORDER_STATUSES] = {"reserved", "created", "paying", "paid", "closed"};

int sk_store_orders_by_status(struct sk_db *db, int64_t counts[SK_ORDER_STATUSES], char *err, size_t errlen)
{
    static const char sql[] = "SELECT status, COUNT(*) FROM orders GROUP BY status";
    MYSQL_RES *res = NULL;
    MYSQL_ROW row;
    for (size_t i = 0; i < SK_ORDER_STATUSES; i++)
        counts[i] = 0;
    if (mysql_real_query(db->conn, sql, sizeof(sql) - 1) != 0 || (res = mysql_store_result(db->conn)) == NULL) {
        snprintf(err, errlen, "MariaDB: %s", mysql_error(db->conn));
        return SK_ERR;
    }
    while ((row = mysql_fetch_row(res)) != NULL) {
        for (size_t i = 0; i < SK_ORDER_STATUSES; i++)
            if (row[0] && row[1] && strcmp(row[0], sk_order_status_names[i]) == 0)
                counts[i] = strtoll(row[1], NULL, 10);
    }
    mysql_free_result(res);
    return SK_OK;
}
