/* The MariaDB layer (core/db/): connections, the migration runner with the real
 * sql/ migrations and with deliberately broken lists, and the activity store, all
 * against the real MariaDB of scripts/stack.sh. Databases: sktest_db* (own ones). */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>
#include <seckill/plugin.h>

#include "core/db/activity_store.h"
#include "core/db/db.h"
#include "tests/support.h"

#define STORE_DB "sktest_db"
#define MIG_DB "sktest_db_mig"
#define BROKEN_DB "sktest_db_broken"

static char err[512];

static void open_db(struct sk_db *db, const char *database)
{
    err[0] = '\0';
    ck_assert_msg(sk_db_open(db, sk_test_mysql_host(), (unsigned)sk_test_mysql_port(), sk_test_mysql_user(),
                             sk_test_mysql_password(), database, err, sizeof(err)) == SK_OK,
                  "open %s: %s", database, err);
}

/* One integer from a query (the test's own SQL, for checking what is stored). */
static long long query_int(struct sk_db *db, const char *sql)
{
    MYSQL_RES *res;
    MYSQL_ROW row;
    long long v;

    ck_assert_msg(mysql_query(db->conn, sql) == 0, "%s: %s", sql, mysql_error(db->conn));
    res = mysql_store_result(db->conn);
    ck_assert_msg(res != NULL, "%s: no result", sql);
    row = mysql_fetch_row(res);
    ck_assert_msg(row != NULL, "%s: no row", sql);
    v = row[0] != NULL ? strtoll(row[0], NULL, 10) : -1;
    mysql_free_result(res);
    return v;
}

/* One text value from a query into buf. */
static void query_str(struct sk_db *db, const char *sql, char *buf, size_t len)
{
    MYSQL_RES *res;
    MYSQL_ROW row;

    ck_assert_msg(mysql_query(db->conn, sql) == 0, "%s: %s", sql, mysql_error(db->conn));
    res = mysql_store_result(db->conn);
    ck_assert_msg(res != NULL, "%s: no result", sql);
    row = mysql_fetch_row(res);
    ck_assert_msg(row != NULL, "%s: no row", sql);
    snprintf(buf, len, "%s", row[0] != NULL ? row[0] : "NULL");
    mysql_free_result(res);
}

static int table_exists(struct sk_db *db, const char *table)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '%s'",
             table);
    return query_int(db, sql) == 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- connections --------------------------------------------------------------- */

START_TEST(test_open_unreachable)
{
    struct sk_db db;
    int port = sk_test_free_port();
    char want[64];

    memset(&db, 0, sizeof(db));
    err[0] = '\0';
    ck_assert_int_eq(sk_db_open(&db, "127.0.0.1", (unsigned)port, "seckill", "seckill", STORE_DB, err, sizeof(err)),
                     SK_ERR);
    snprintf(want, sizeof(want), "cannot connect to MariaDB at 127.0.0.1:%d", port);
    ck_assert_msg(strstr(err, want) != NULL, "message: %s", err);
    ck_assert_ptr_null(db.conn);
    ck_assert_str_eq(db.host, "");
}
END_TEST

START_TEST(test_open_bad_args)
{
    struct sk_db db;
    char longhost[300];

    memset(&db, 0, sizeof(db));
    ck_assert_int_eq(sk_db_open(&db, "127.0.0.1", 0, "seckill", "seckill", NULL, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "port 0") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_db_open(&db, NULL, 3390, "seckill", "seckill", NULL, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "host and user") != NULL, "message: %s", err);
    memset(longhost, 'h', sizeof(longhost) - 1);
    longhost[sizeof(longhost) - 1] = '\0';
    ck_assert_int_eq(sk_db_open(&db, longhost, 3390, "seckill", "seckill", NULL, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "too long") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_db_open(&db, sk_test_mysql_host(), (unsigned)sk_test_mysql_port(), sk_test_mysql_user(),
                                "wrong-password", NULL, err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "Access denied") != NULL, "message: %s", err);
    ck_assert_ptr_null(db.conn);
    /* No error buffer at all must not crash either. */
    ck_assert_int_eq(sk_db_open(&db, "127.0.0.1", 0, "seckill", "seckill", NULL, NULL, 0), SK_ERR);
}
END_TEST

START_TEST(test_open_session)
{
    struct sk_db db;
    char buf[256];

    sk_test_db_fresh(STORE_DB);
    open_db(&db, STORE_DB);
    query_str(&db, "SELECT @@session.time_zone", buf, sizeof(buf));
    ck_assert_str_eq(buf, "+00:00");
    query_str(&db, "SELECT @@character_set_client", buf, sizeof(buf));
    ck_assert_str_eq(buf, "utf8mb4");
    query_str(&db, "SELECT @@character_set_results", buf, sizeof(buf));
    ck_assert_str_eq(buf, "utf8mb4");
    query_str(&db, "SELECT @@session.sql_mode", buf, sizeof(buf));
    ck_assert_msg(strstr(buf, "STRICT_ALL_TABLES") != NULL, "sql_mode %s", buf);
    ck_assert_int_eq(query_int(&db, "SELECT @@autocommit"), 1);
    /* NOW() is UTC: within a minute of the local clock's epoch time. */
    ck_assert_msg(llabs(query_int(&db, "SELECT UNIX_TIMESTAMP(NOW())") - (long long)time(NULL)) < 60,
                  "server clock is not UTC");
    ck_assert_str_eq(db.database, STORE_DB);
    ck_assert_uint_eq(db.port, (unsigned)sk_test_mysql_port());
    sk_db_close(&db);
    ck_assert_ptr_null(db.conn);
    sk_db_close(&db);   /* twice: safe */
}
END_TEST

START_TEST(test_ping_reconnects)
{
    struct sk_db db, killer;
    long long id_before, id_after;
    char sql[64];

    open_db(&db, NULL);
    open_db(&killer, NULL);
    ck_assert_int_eq(sk_db_ping(&db, err, sizeof(err)), SK_OK);
    id_before = (long long)mysql_thread_id(db.conn);
    /* The server drops the connection (as on a MariaDB restart). */
    snprintf(sql, sizeof(sql), "KILL CONNECTION %lld", id_before);
    ck_assert_int_eq(sk_db_exec(&killer, sql, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(sk_db_exec(&db, "SELECT 1", err, sizeof(err)), SK_ERR);
    ck_assert_int_eq(sk_db_ping(&db, err, sizeof(err)), SK_OK);
    id_after = (long long)mysql_thread_id(db.conn);
    ck_assert_int_ne(id_before, id_after);
    ck_assert_int_eq(sk_db_exec(&db, "SELECT 1", err, sizeof(err)), SK_OK);
    /* The new session has the same settings. */
    query_str(&db, "SELECT @@session.time_zone", sql, sizeof(sql));
    ck_assert_str_eq(sql, "+00:00");
    sk_db_close(&killer);
    sk_db_close(&db);
    /* A closed (zeroed) connection cannot be pinged back to life: it has no address. */
    ck_assert_int_eq(sk_db_ping(&db, err, sizeof(err)), SK_ERR);
    ck_assert_int_eq(sk_db_exec(&db, "SELECT 1", err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "not connected") != NULL, "message: %s", err);
}
END_TEST

START_TEST(test_exec_error)
{
    struct sk_db db;

    open_db(&db, NULL);
    ck_assert_int_eq(sk_db_exec(&db, "SELEC 1", err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "SQL syntax") != NULL && strstr(err, "1064") != NULL, "message: %s", err);
    /* The connection is still in sync after an error and after a statement with rows. */
    ck_assert_int_eq(sk_db_exec(&db, "SELECT 1, 2", err, sizeof(err)), SK_OK);
    ck_assert_int_eq(sk_db_exec(&db, "DO 1", err, sizeof(err)), SK_OK);
    ck_assert_int_eq(sk_db_exec(&db, NULL, err, sizeof(err)), SK_ERR);
    sk_db_close(&db);
}
END_TEST

START_TEST(test_time_conversion)
{
    static const int64_t samples[] = {0, 1, 999, 1000, 1764064800123LL /* 2025-11-25T10:00:00.123Z */,
                                      -1, -86400001LL, 951782400000LL /* 2000-02-29 */, 253402300799999LL};
    MYSQL_TIME t;
    size_t i;

    for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        ck_assert_int_eq(sk_db_time_from_ms(samples[i], &t), SK_OK);
        ck_assert_int_eq(sk_db_time_to_ms(&t), samples[i]);
    }
    ck_assert_int_eq(sk_db_time_from_ms(1764064800123LL, &t), SK_OK);
    ck_assert_uint_eq(t.year, 2025);
    ck_assert_uint_eq(t.month, 11);
    ck_assert_uint_eq(t.day, 25);
    ck_assert_uint_eq(t.hour, 10);
    ck_assert_uint_eq(t.minute, 0);
    ck_assert_uint_eq(t.second, 0);
    ck_assert_uint_eq(t.second_part, 123000);
    ck_assert_int_eq(sk_db_time_from_ms(-1, &t), SK_OK);
    ck_assert_uint_eq(t.year, 1969);
    ck_assert_uint_eq(t.second_part, 999000);
    /* Outside DATETIME: refused, output untouched. */
    memset(&t, 0x5a, sizeof(t));
    ck_assert_int_eq(sk_db_time_from_ms(253402300800000LL, &t), SK_ERR);
    ck_assert_int_eq(sk_db_time_from_ms(INT64_MIN, &t), SK_ERR);
    ck_assert_int_eq(sk_db_time_from_ms(INT64_MAX, &t), SK_ERR);
    ck_assert_uint_eq(t.year, 0x5a5a5a5au);
}
END_TEST

/* --- migrations ---------------------------------------------------------------- */

START_TEST(test_migrate_from_empty_and_rerun)
{
    static const char *const tables[] = {"schema_migrations", "activities", "items", "orders", "payments", "refunds"};
    struct sk_db db;
    int applied = -1;
    size_t i;
    char sql[256], name[128];

    ck_assert_uint_ge(sk_migrations_count, 3);
    sk_test_db_fresh(MIG_DB);
    open_db(&db, MIG_DB);
    ck_assert_msg(sk_db_migrate(&db, &applied, err, sizeof(err)) == SK_OK, "migrate: %s", err);
    ck_assert_int_eq(applied, (int)sk_migrations_count);
    for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        ck_assert_msg(table_exists(&db, tables[i]), "table %s missing", tables[i]);
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), (long long)sk_migrations_count);
    for (i = 0; i < sk_migrations_count; i++) {
        snprintf(sql, sizeof(sql), "SELECT name FROM schema_migrations WHERE version = %d", sk_migrations[i].version);
        query_str(&db, sql, name, sizeof(name));
        ck_assert_str_eq(name, sk_migrations[i].name);
    }
    /* Every table is InnoDB and utf8mb4. */
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                                    "AND (engine <> 'InnoDB' OR table_collation NOT LIKE 'utf8mb4%')"),
                     0);
    /* Again: nothing left to do. */
    applied = -1;
    ck_assert_msg(sk_db_migrate(&db, &applied, err, sizeof(err)) == SK_OK, "migrate: %s", err);
    ck_assert_int_eq(applied, 0);
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), (long long)sk_migrations_count);
    sk_db_close(&db);
}
END_TEST

/* The keys that the invariants rely on exist and hold. */
START_TEST(test_migrated_keys_hold)
{
    struct sk_db db;
    int applied = 0;

    sk_test_db_fresh(MIG_DB);
    open_db(&db, MIG_DB);
    ck_assert_msg(sk_db_migrate(&db, &applied, err, sizeof(err)) == SK_OK, "migrate: %s", err);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO activities (id, name, starts_at, ends_at) VALUES "
                                "(1, 'a', '2030-01-01', '2030-01-02')",
                                err, sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO items (id, activity_id, sku, title, price_cents, seckill_price_cents, "
                                "stock) VALUES (1, 1, 'A', 't', 100, 50, 10)",
                                err, sizeof(err)),
                     SK_OK);
    /* One order per (activity, item, user, seq) and per order number. */
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO orders (order_no, activity_id, item_id, user_id, seq, amount_cents, "
                                "reserved_at, expires_at) VALUES ('O1', 1, 1, 7, 1, 50, NOW(3), NOW(3))",
                                err, sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO orders (order_no, activity_id, item_id, user_id, seq, amount_cents, "
                                "reserved_at, expires_at) VALUES ('O2', 1, 1, 7, 1, 50, NOW(3), NOW(3))",
                                err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "uq_orders_slot") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO orders (order_no, activity_id, item_id, user_id, seq, amount_cents, "
                                "reserved_at, expires_at) VALUES ('O1', 1, 1, 7, 2, 50, NOW(3), NOW(3))",
                                err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "uq_orders_order_no") != NULL, "message: %s", err);
    /* No order for an item that does not exist. */
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO orders (order_no, activity_id, item_id, user_id, seq, amount_cents, "
                                "reserved_at, expires_at) VALUES ('O3', 1, 99, 7, 1, 50, NOW(3), NOW(3))",
                                err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "foreign key") != NULL, "message: %s", err);
    /* One payment per order and per idempotency key. */
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO payments (order_no, gateway, idempotency_key, amount_cents) "
                                "VALUES ('O1', 'alipay', 'k1', 50)",
                                err, sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO payments (order_no, gateway, idempotency_key, amount_cents) "
                                "VALUES ('O1', 'alipay', 'k2', 50)",
                                err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "uq_payments_order_no") != NULL, "message: %s", err);
    /* A refund once per order. */
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO refunds (refund_no, order_no, gateway, amount_cents) "
                                "VALUES ('R1', 'O1', 'alipay', 50)",
                                err, sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_db_exec(&db,
                                "INSERT INTO refunds (refund_no, order_no, gateway, amount_cents) "
                                "VALUES ('R2', 'O1', 'alipay', 50)",
                                err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "uq_refunds_order_no") != NULL, "message: %s", err);
    /* Unknown order status values are refused (strict mode). */
    ck_assert_int_eq(sk_db_exec(&db, "UPDATE orders SET status = 'lost' WHERE order_no = 'O1'", err, sizeof(err)),
                     SK_ERR);
    sk_db_close(&db);
}
END_TEST

struct mig_thread {
    pthread_t tid;
    int rc, applied;
    char err[512];
};

static void *mig_thread_run(void *arg)
{
    struct mig_thread *t = arg;
    struct sk_db db;

    t->rc = sk_db_open(&db, sk_test_mysql_host(), (unsigned)sk_test_mysql_port(), sk_test_mysql_user(),
                       sk_test_mysql_password(), MIG_DB, t->err, sizeof(t->err));
    if (t->rc == SK_OK) {
        t->rc = sk_db_migrate(&db, &t->applied, t->err, sizeof(t->err));
        sk_db_close(&db);
    }
    return NULL;
}

START_TEST(test_migrate_concurrent)
{
    struct mig_thread t[3];
    struct sk_db db;
    int i, total = 0;

    sk_test_db_fresh(MIG_DB);
    memset(t, 0, sizeof(t));
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&t[i].tid, NULL, mig_thread_run, &t[i]), 0);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_join(t[i].tid, NULL), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_msg(t[i].rc == SK_OK, "thread %d: %s", i, t[i].err);
        total += t[i].applied;
    }
    ck_assert_int_eq(total, (int)sk_migrations_count);
    open_db(&db, MIG_DB);
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), (long long)sk_migrations_count);
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(DISTINCT version) FROM schema_migrations"),
                     (long long)sk_migrations_count);
    sk_db_close(&db);
}
END_TEST

START_TEST(test_migrate_broken_stops)
{
    static const struct sk_migration broken[] = {
        {1, "001_first", "-- two statements, one of them after a comment\nCREATE TABLE t_a (x INT);  \n"
                         "CREATE TABLE t_a2 (x INT)\n;\n-- trailing comment\n"},
        {2, "002_broken", "CREATE TABLE IF NOT EXISTS t_b (x INT);\nCREATE TABLEE t_oops (x INT);\n"},
        {3, "003_after", "CREATE TABLE t_c (x INT);\n"},
    };
    static const struct sk_migration fixed[] = {
        {1, "001_first", "this is never run again;\n"},
        {2, "002_fixed", "CREATE TABLE IF NOT EXISTS t_b (x INT);\nCREATE TABLE t_d (x INT);\n"},
        {3, "003_after", "CREATE TABLE t_c (x INT);\n"},
    };
    struct sk_db db;
    int applied = -7;

    sk_test_db_fresh(BROKEN_DB);
    open_db(&db, BROKEN_DB);
    ck_assert_int_eq(sk_db_migrate_list(&db, broken, 3, &applied, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "migration 002_broken: statement 2 (CREATE TABLEE t_oops") != NULL, "message: %s", err);
    ck_assert_msg(strstr(err, "SQL syntax") != NULL, "server's error missing: %s", err);
    ck_assert_msg(strstr(err, "1 applied before it") != NULL, "message: %s", err);
    ck_assert_int_eq(applied, -7);
    ck_assert(table_exists(&db, "t_a"));
    ck_assert(table_exists(&db, "t_a2"));
    ck_assert(!table_exists(&db, "t_c"));
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), 1);
    ck_assert_int_eq(query_int(&db, "SELECT version FROM schema_migrations"), 1);
    /* The half-applied migration, fixed, runs again (its DDL is re-runnable). */
    ck_assert_msg(sk_db_migrate_list(&db, fixed, 3, &applied, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_int_eq(applied, 2);
    ck_assert(table_exists(&db, "t_c"));
    ck_assert(table_exists(&db, "t_d"));
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), 3);
    sk_db_close(&db);
}
END_TEST

START_TEST(test_migrate_data_migration_atomic)
{
    static const struct sk_migration list[] = {
        {1, "001_table", "CREATE TABLE t (x INT) ENGINE=InnoDB;\n"},
        {2, "002_data", "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES ('not a number');\n"},
    };
    struct sk_db db;
    int applied = -7;

    sk_test_db_fresh(BROKEN_DB);
    open_db(&db, BROKEN_DB);
    ck_assert_int_eq(sk_db_migrate_list(&db, list, 2, &applied, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "migration 002_data: statement 2") != NULL, "message: %s", err);
    /* Data-only migrations are one transaction: the first INSERT is undone. */
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM t"), 0);
    ck_assert_int_eq(query_int(&db, "SELECT COUNT(*) FROM schema_migrations"), 1);
    sk_db_close(&db);
}
END_TEST

START_TEST(test_migrate_bad_list)
{
    static const struct sk_migration unordered[] = {
        {2, "002_b", "CREATE TABLE t_b (x INT);\n"},
        {1, "001_a", "CREATE TABLE t_a (x INT);\n"},
    };
    static const struct sk_migration nameless[] = {
        {1, NULL, "CREATE TABLE t_a (x INT);\n"},
    };
    struct sk_db db, closed;
    int applied = -7;

    sk_test_db_fresh(BROKEN_DB);
    open_db(&db, BROKEN_DB);
    ck_assert_int_eq(sk_db_migrate_list(&db, unordered, 2, &applied, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "001_a does not come after 002_b") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_db_migrate_list(&db, nameless, 1, &applied, err, sizeof(err)), SK_ERR);
    ck_assert_int_eq(applied, -7);
    /* Nothing was run, not even the bookkeeping table. */
    ck_assert(!table_exists(&db, "schema_migrations"));
    ck_assert(!table_exists(&db, "t_a"));
    ck_assert(!table_exists(&db, "t_b"));
    memset(&closed, 0, sizeof(closed));
    ck_assert_int_eq(sk_db_migrate(&closed, &applied, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "not connected") != NULL, "message: %s", err);
    sk_db_close(&db);
}
END_TEST

/* --- the activity store -------------------------------------------------------- */

static struct sk_db sdb;

static void store_setup(void)
{
    int applied = 0;

    sk_test_db_fresh(STORE_DB);
    open_db(&sdb, STORE_DB);
    ck_assert_msg(sk_db_migrate(&sdb, &applied, err, sizeof(err)) == SK_OK, "migrate: %s", err);
}

static void store_teardown(void)
{
    sk_db_close(&sdb);
}

#define T0 1893456000123LL /* 2030-01-01T00:00:00.123Z */
#define HOUR 3600000LL

static void fill_item(struct sk_item *it, const char *sku, const char *title, int64_t stock)
{
    memset(it, 0, sizeof(*it));
    snprintf(it->sku, sizeof(it->sku), "%s", sku);
    snprintf(it->title, sizeof(it->title), "%s", title);
    it->price_cents = 599900;
    it->seckill_price_cents = 99;
    it->stock = stock;
    it->per_user_limit = 1;
}

/* An activity with n items "SKU-1".. (malloc'd items, as the store expects). */
static void make_activity(struct sk_activity *a, const char *name, size_t n)
{
    size_t i;
    char sku[32];

    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->publish_at_ms = T0;
    a->starts_at_ms = T0 + HOUR;
    a->ends_at_ms = T0 + 2 * HOUR;
    a->state = SK_ACT_RUNNING; /* ignored: created as draft */
    a->n_items = n;
    a->items = calloc(n > 0 ? n : 1, sizeof(*a->items));
    ck_assert_ptr_nonnull(a->items);
    for (i = 0; i < n; i++) {
        snprintf(sku, sizeof(sku), "SKU-%zu", i + 1);
        fill_item(&a->items[i], sku, "item", 10 + (int64_t)i);
    }
}

static uint64_t create_activity(const char *name, size_t n)
{
    struct sk_activity a;
    uint64_t id;

    make_activity(&a, name, n);
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "create: %s", err);
    id = a.id;
    sk_activity_free(&a);
    return id;
}

static void set_state(uint64_t id, enum sk_activity_state to)
{
    ck_assert_msg(sk_store_activity_transition(&sdb, id, 0x3f, to, -1, err, sizeof(err)) == SK_OK, "%s", err);
}

static void assert_item_eq(const struct sk_item *x, const struct sk_item *y)
{
    ck_assert_uint_eq(x->id, y->id);
    ck_assert_uint_eq(x->activity_id, y->activity_id);
    ck_assert_str_eq(x->sku, y->sku);
    ck_assert_str_eq(x->title, y->title);
    ck_assert_int_eq(x->price_cents, y->price_cents);
    ck_assert_int_eq(x->seckill_price_cents, y->seckill_price_cents);
    ck_assert_int_eq(x->stock, y->stock);
    ck_assert_uint_eq(x->per_user_limit, y->per_user_limit);
}

START_TEST(test_store_state_names)
{
    enum sk_activity_state s = SK_ACT_ENDED;
    int i;

    for (i = SK_ACT_DRAFT; i <= SK_ACT_CANCELLED; i++) {
        ck_assert_int_eq(sk_activity_state_parse(sk_activity_state_name((enum sk_activity_state)i), &s), SK_OK);
        ck_assert_int_eq(s, i);
    }
    ck_assert_str_eq(sk_activity_state_name(SK_ACT_SCHEDULED), "scheduled");
    ck_assert_str_eq(sk_activity_state_name((enum sk_activity_state)42), "unknown");
    s = SK_ACT_ENDED;
    ck_assert_int_eq(sk_activity_state_parse("Draft", &s), SK_ERR);
    ck_assert_int_eq(sk_activity_state_parse(NULL, &s), SK_ERR);
    ck_assert_int_eq(s, SK_ACT_ENDED);
}
END_TEST

START_TEST(test_store_create_get)
{
    struct sk_activity a, got;
    int64_t before = now_ms();
    size_t i;

    make_activity(&a, "双十一秒杀 Singles' Day", 2);
    snprintf(a.items[0].title, sizeof(a.items[0].title), "秒杀手机");
    a.items[1].per_user_limit = 3;
    a.items[1].price_cents = 0;
    a.items[0].id = 999; /* ignored on create */
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "create: %s", err);
    ck_assert_uint_gt(a.id, 0);
    ck_assert_int_eq(a.state, SK_ACT_DRAFT);
    ck_assert_msg(llabs(a.created_at_ms - before) < 60000, "created_at %lld", (long long)a.created_at_ms);
    ck_assert_int_eq(a.created_at_ms, a.updated_at_ms);
    for (i = 0; i < 2; i++) {
        ck_assert_uint_gt(a.items[i].id, 0);
        ck_assert_uint_ne(a.items[i].id, 999);
        ck_assert_uint_eq(a.items[i].activity_id, a.id);
    }
    ck_assert_uint_ne(a.items[0].id, a.items[1].id);

    memset(&got, 0x5a, sizeof(got));
    ck_assert_msg(sk_store_activity_get(&sdb, a.id, &got, err, sizeof(err)) == SK_OK, "get: %s", err);
    ck_assert_uint_eq(got.id, a.id);
    ck_assert_str_eq(got.name, "双十一秒杀 Singles' Day");
    ck_assert_int_eq(got.state, SK_ACT_DRAFT);
    ck_assert_int_eq(got.publish_at_ms, T0);
    ck_assert_int_eq(got.starts_at_ms, T0 + HOUR);
    ck_assert_int_eq(got.ends_at_ms, T0 + 2 * HOUR);
    ck_assert_int_eq(got.created_at_ms, a.created_at_ms);
    ck_assert_int_eq(got.updated_at_ms, a.updated_at_ms);
    ck_assert_uint_eq(got.n_items, 2);
    for (i = 0; i < 2; i++)
        assert_item_eq(&got.items[i], &a.items[i]);
    ck_assert_str_eq(got.items[0].title, "秒杀手机");
    sk_activity_free(&got);
    ck_assert_ptr_null(got.items);
    sk_activity_free(&a);
}
END_TEST

START_TEST(test_store_get_unknown)
{
    struct sk_activity got;

    memset(&got, 0x5a, sizeof(got));
    ck_assert_int_eq(sk_store_activity_get(&sdb, 12345, &got, err, sizeof(err)), SK_STORE_NOT_FOUND);
    ck_assert_msg(strstr(err, "12345") != NULL, "message: %s", err);
    ck_assert_uint_eq(got.id, 0x5a5a5a5a5a5a5a5aULL);
}
END_TEST

START_TEST(test_store_no_publish_time_no_items)
{
    struct sk_activity a, got;
    char buf[32];
    char sql[128];

    make_activity(&a, "by hand", 0);
    a.publish_at_ms = 0;
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "create: %s", err);
    snprintf(sql, sizeof(sql), "SELECT publish_at FROM activities WHERE id = %llu", (unsigned long long)a.id);
    query_str(&sdb, sql, buf, sizeof(buf));
    ck_assert_str_eq(buf, "NULL");
    ck_assert_int_eq(sk_store_activity_get(&sdb, a.id, &got, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(got.publish_at_ms, 0);
    ck_assert_uint_eq(got.n_items, 0);
    ck_assert_ptr_null(got.items);
    sk_activity_free(&got);
    sk_activity_free(&a);
}
END_TEST

START_TEST(test_store_list_mask)
{
    struct sk_activity *list = NULL;
    uint64_t id1, id2, id3;
    size_t n = 99, i, j;

    id1 = create_activity("first", 1);
    id2 = create_activity("second", 3);
    id3 = create_activity("third", 2);
    set_state(id2, SK_ACT_SCHEDULED);
    set_state(id3, SK_ACT_RUNNING);

    ck_assert_msg(sk_store_activity_list(&sdb, 0, &list, &n, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_uint_eq(n, 3);
    /* Newest first, each with its own items only. */
    ck_assert_uint_eq(list[0].id, id3);
    ck_assert_uint_eq(list[1].id, id2);
    ck_assert_uint_eq(list[2].id, id1);
    ck_assert_uint_eq(list[0].n_items, 2);
    ck_assert_uint_eq(list[1].n_items, 3);
    ck_assert_uint_eq(list[2].n_items, 1);
    ck_assert_int_eq(list[0].state, SK_ACT_RUNNING);
    ck_assert_str_eq(list[1].name, "second");
    for (i = 0; i < n; i++) {
        for (j = 0; j < list[i].n_items; j++) {
            char sku[32];

            ck_assert_uint_eq(list[i].items[j].activity_id, list[i].id);
            snprintf(sku, sizeof(sku), "SKU-%zu", j + 1);
            ck_assert_str_eq(list[i].items[j].sku, sku);
            ck_assert_int_eq(list[i].items[j].stock, 10 + (int64_t)j);
        }
    }
    sk_activity_list_free(list, n);

    ck_assert_int_eq(sk_store_activity_list(&sdb, 1u << SK_ACT_DRAFT, &list, &n, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(list[0].id, id1);
    ck_assert_uint_eq(list[0].n_items, 1);
    sk_activity_list_free(list, n);

    ck_assert_int_eq(sk_store_activity_list(&sdb, (1u << SK_ACT_SCHEDULED) | (1u << SK_ACT_RUNNING), &list, &n, err,
                                            sizeof(err)),
                     SK_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(list[0].id, id3);
    ck_assert_uint_eq(list[1].id, id2);
    sk_activity_list_free(list, n);

    ck_assert_int_eq(sk_store_activity_list(&sdb, 1u << SK_ACT_ENDED, &list, &n, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(n, 0);
    sk_activity_list_free(list, n);
    /* Bits of no state select nothing rather than everything. */
    ck_assert_int_eq(sk_store_activity_list(&sdb, 1u << 20, &list, &n, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(n, 0);
    sk_activity_list_free(list, n);
}
END_TEST

START_TEST(test_store_update_draft)
{
    struct sk_activity a, got;
    uint64_t id_a, id_b, id_c;
    struct sk_item *items;
    char sql[128];

    make_activity(&a, "before", 3);
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "create: %s", err);
    id_a = a.items[0].id;
    id_b = a.items[1].id;
    id_c = a.items[2].id;

    /* Change fields; keep A, change B, drop C, add D. */
    snprintf(a.name, sizeof(a.name), "after 秒杀");
    a.publish_at_ms = 0;
    a.starts_at_ms = T0 + 5 * HOUR;
    a.ends_at_ms = T0 + 6 * HOUR;
    items = calloc(3, sizeof(*items));
    ck_assert_ptr_nonnull(items);
    items[0] = a.items[0];
    items[1] = a.items[1];
    snprintf(items[1].title, sizeof(items[1].title), "新标题");
    items[1].stock = 77;
    items[1].per_user_limit = 2;
    fill_item(&items[2], "SKU-D", "new one", 5);
    free(a.items);
    a.items = items;
    a.n_items = 3;
    a.state = SK_ACT_ENDED; /* ignored: update never changes the state */
    ck_assert_msg(sk_store_activity_update(&sdb, &a, err, sizeof(err)) == SK_OK, "update: %s", err);
    /* *a was refreshed from the store. */
    ck_assert_str_eq(a.name, "after 秒杀");
    ck_assert_int_eq(a.state, SK_ACT_DRAFT);
    ck_assert_int_eq(a.publish_at_ms, 0);
    ck_assert_uint_eq(a.n_items, 3);
    ck_assert_uint_eq(a.items[0].id, id_a);
    ck_assert_uint_eq(a.items[1].id, id_b);
    ck_assert_str_eq(a.items[1].title, "新标题");
    ck_assert_int_eq(a.items[1].stock, 77);
    ck_assert_uint_eq(a.items[1].per_user_limit, 2);
    ck_assert_str_eq(a.items[2].sku, "SKU-D");
    ck_assert_uint_gt(a.items[2].id, id_c);
    ck_assert_uint_eq(a.items[2].activity_id, a.id);
    ck_assert_int_ge(a.updated_at_ms, a.created_at_ms);
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM items WHERE id = %llu", (unsigned long long)id_c);
    ck_assert_int_eq(query_int(&sdb, sql), 0);

    ck_assert_int_eq(sk_store_activity_get(&sdb, a.id, &got, err, sizeof(err)), SK_OK);
    ck_assert_str_eq(got.name, "after 秒杀");
    ck_assert_int_eq(got.starts_at_ms, T0 + 5 * HOUR);
    ck_assert_uint_eq(got.n_items, 3);
    assert_item_eq(&got.items[1], &a.items[1]);
    sk_activity_free(&got);

    /* Swapping the skus of two items goes through the unique key. */
    snprintf(a.items[0].sku, sizeof(a.items[0].sku), "SKU-2");
    snprintf(a.items[1].sku, sizeof(a.items[1].sku), "SKU-1");
    ck_assert_msg(sk_store_activity_update(&sdb, &a, err, sizeof(err)) == SK_OK, "swap: %s", err);
    ck_assert_uint_eq(a.items[0].id, id_a);
    ck_assert_str_eq(a.items[0].sku, "SKU-2");

    /* A scheduled activity may still be changed. */
    set_state(a.id, SK_ACT_SCHEDULED);
    a.n_items = 1;
    ck_assert_msg(sk_store_activity_update(&sdb, &a, err, sizeof(err)) == SK_OK, "update scheduled: %s", err);
    ck_assert_int_eq(a.state, SK_ACT_SCHEDULED);
    ck_assert_uint_eq(a.n_items, 1);
    sk_activity_free(&a);
}
END_TEST

START_TEST(test_store_update_refused)
{
    struct sk_activity a, other, got;
    char name_before[sizeof(a.name)];

    make_activity(&a, "running one", 2);
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_OK);
    make_activity(&other, "other", 1);
    ck_assert_int_eq(sk_store_activity_create(&sdb, &other, err, sizeof(err)), SK_OK);
    snprintf(name_before, sizeof(name_before), "%s", a.name);

    /* An item of another activity: refused, nothing changed. */
    a.items[1].id = other.items[0].id;
    snprintf(a.name, sizeof(a.name), "renamed");
    ck_assert_int_eq(sk_store_activity_update(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "is not an item of activity") != NULL, "message: %s", err);
    /* The same item twice: refused. */
    a.items[1].id = a.items[0].id;
    ck_assert_int_eq(sk_store_activity_update(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "more than once") != NULL, "message: %s", err);
    /* Two items with one sku: refused, nothing changed. */
    a.items[1].id = 0;
    snprintf(a.items[1].sku, sizeof(a.items[1].sku), "%s", a.items[0].sku);
    ck_assert_int_eq(sk_store_activity_update(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "appears more than once") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_store_activity_get(&sdb, a.id, &got, err, sizeof(err)), SK_OK);
    ck_assert_str_eq(got.name, name_before);
    ck_assert_uint_eq(got.n_items, 2);
    ck_assert_str_eq(got.items[1].sku, "SKU-2");
    sk_activity_free(&got);

    /* While running: conflict, nothing changed. */
    snprintf(a.items[1].sku, sizeof(a.items[1].sku), "SKU-X");
    set_state(a.id, SK_ACT_RUNNING);
    ck_assert_int_eq(sk_store_activity_update(&sdb, &a, err, sizeof(err)), SK_STORE_CONFLICT);
    ck_assert_msg(strstr(err, "running") != NULL, "message: %s", err);
    ck_assert_str_eq(a.name, "renamed"); /* caller's copy untouched */
    ck_assert_int_eq(sk_store_activity_get(&sdb, a.id, &got, err, sizeof(err)), SK_OK);
    ck_assert_str_eq(got.name, name_before);
    ck_assert_int_eq(got.state, SK_ACT_RUNNING);
    sk_activity_free(&got);

    /* Unknown activity. */
    a.id = 987654;
    ck_assert_int_eq(sk_store_activity_update(&sdb, &a, err, sizeof(err)), SK_STORE_NOT_FOUND);
    sk_activity_free(&a);
    sk_activity_free(&other);
}
END_TEST

START_TEST(test_store_delete)
{
    uint64_t draft = create_activity("draft", 2), sched = create_activity("scheduled", 1),
             running = create_activity("running", 1);
    struct sk_activity got;

    set_state(sched, SK_ACT_SCHEDULED);
    set_state(running, SK_ACT_RUNNING);
    ck_assert_msg(sk_store_activity_delete(&sdb, draft, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_int_eq(sk_store_activity_get(&sdb, draft, &got, err, sizeof(err)), SK_STORE_NOT_FOUND);
    ck_assert_msg(sk_store_activity_delete(&sdb, sched, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM items"), 1);

    ck_assert_int_eq(sk_store_activity_delete(&sdb, running, err, sizeof(err)), SK_STORE_CONFLICT);
    ck_assert_msg(strstr(err, "running") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_store_activity_get(&sdb, running, &got, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(got.n_items, 1);
    sk_activity_free(&got);

    ck_assert_int_eq(sk_store_activity_delete(&sdb, draft, err, sizeof(err)), SK_STORE_NOT_FOUND);
}
END_TEST

START_TEST(test_store_transition_cas)
{
    uint64_t id = create_activity("cas", 1);
    struct sk_activity got;
    int64_t at = T0 - HOUR;

    ck_assert_msg(sk_store_activity_transition(&sdb, id, 1u << SK_ACT_DRAFT, SK_ACT_SCHEDULED, at, err,
                                               sizeof(err)) == SK_OK,
                  "%s", err);
    ck_assert_int_eq(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(got.state, SK_ACT_SCHEDULED);
    ck_assert_int_eq(got.publish_at_ms, at);
    sk_activity_free(&got);

    /* The state no longer matches: conflict, nothing changed. */
    ck_assert_int_eq(sk_store_activity_transition(&sdb, id, 1u << SK_ACT_DRAFT, SK_ACT_CANCELLED, 0, err,
                                                  sizeof(err)),
                     SK_STORE_CONFLICT);
    ck_assert_msg(strstr(err, "scheduled") != NULL, "message: %s", err);
    /* -1 keeps publish_at. */
    ck_assert_int_eq(sk_store_activity_transition(&sdb, id, (1u << SK_ACT_DRAFT) | (1u << SK_ACT_SCHEDULED),
                                                  SK_ACT_PUBLISHED, -1, err, sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(got.state, SK_ACT_PUBLISHED);
    ck_assert_int_eq(got.publish_at_ms, at);
    sk_activity_free(&got);
    /* 0 clears it. */
    ck_assert_int_eq(sk_store_activity_transition(&sdb, id, 1u << SK_ACT_PUBLISHED, SK_ACT_RUNNING, 0, err,
                                                  sizeof(err)),
                     SK_OK);
    ck_assert_int_eq(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(got.state, SK_ACT_RUNNING);
    ck_assert_int_eq(got.publish_at_ms, 0);
    sk_activity_free(&got);

    ck_assert_int_eq(sk_store_activity_transition(&sdb, 424242, 0x3f, SK_ACT_ENDED, -1, err, sizeof(err)),
                     SK_STORE_NOT_FOUND);
    ck_assert_int_eq(sk_store_activity_transition(&sdb, id, 0x3f, (enum sk_activity_state)17, -1, err, sizeof(err)),
                     SK_ERR);
    ck_assert_msg(strstr(err, "unknown target state") != NULL, "message: %s", err);
    ck_assert_int_eq(sk_store_activity_transition(&sdb, id, 0x3f, SK_ACT_ENDED, INT64_MAX, err, sizeof(err)),
                     SK_ERR);
    ck_assert_int_eq(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)), SK_OK);
    ck_assert_int_eq(got.state, SK_ACT_RUNNING);
    sk_activity_free(&got);
}
END_TEST

struct cas_thread {
    pthread_t tid;
    pthread_barrier_t *go;
    uint64_t id;
    int rc;
    char err[256];
};

static void *cas_thread_run(void *arg)
{
    struct cas_thread *t = arg;
    struct sk_db db;

    t->rc = sk_db_open(&db, sk_test_mysql_host(), (unsigned)sk_test_mysql_port(), sk_test_mysql_user(),
                       sk_test_mysql_password(), STORE_DB, t->err, sizeof(t->err));
    pthread_barrier_wait(t->go);
    if (t->rc == SK_OK) {
        t->rc = sk_store_activity_transition(&db, t->id, 1u << SK_ACT_SCHEDULED, SK_ACT_PUBLISHED, -1, t->err,
                                             sizeof(t->err));
        sk_db_close(&db);
    }
    return NULL;
}

/* Two daemons publishing the same activity at once: exactly one wins. */
START_TEST(test_store_transition_race)
{
    struct cas_thread t[2];
    pthread_barrier_t go;
    int round, i, ok, conflict;

    for (round = 0; round < 5; round++) {
        uint64_t id = create_activity("race", 1);

        set_state(id, SK_ACT_SCHEDULED);
        ck_assert_int_eq(pthread_barrier_init(&go, NULL, 2), 0);
        memset(t, 0, sizeof(t));
        for (i = 0; i < 2; i++) {
            t[i].go = &go;
            t[i].id = id;
            ck_assert_int_eq(pthread_create(&t[i].tid, NULL, cas_thread_run, &t[i]), 0);
        }
        ok = conflict = 0;
        for (i = 0; i < 2; i++) {
            ck_assert_int_eq(pthread_join(t[i].tid, NULL), 0);
            ok += t[i].rc == SK_OK;
            conflict += t[i].rc == SK_STORE_CONFLICT;
        }
        pthread_barrier_destroy(&go);
        ck_assert_msg(ok == 1 && conflict == 1, "round %d: %d ok, %d conflicts (%s / %s)", round, ok, conflict,
                      t[0].err, t[1].err);
    }
}
END_TEST

START_TEST(test_store_duplicate_sku)
{
    struct sk_activity a;

    make_activity(&a, "dup", 3);
    snprintf(a.items[2].sku, sizeof(a.items[2].sku), "SKU-1");
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "item 3: sku \"SKU-1\" appears more than once") != NULL, "message: %s", err);
    /* Nothing written, outputs untouched. */
    ck_assert_uint_eq(a.id, 0);
    ck_assert_uint_eq(a.items[0].id, 0);
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM activities"), 0);
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM items"), 0);
    /* Skus compare byte for byte: case and trailing spaces make them different. */
    snprintf(a.items[1].sku, sizeof(a.items[1].sku), "sku-1");
    snprintf(a.items[2].sku, sizeof(a.items[2].sku), "SKU-1 ");
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM items"), 3);
    sk_activity_free(&a);
}
END_TEST

START_TEST(test_store_odd_values)
{
    struct sk_activity a;
    struct sk_activity *list = NULL;
    size_t n = 0;

    /* Stock beyond the INT column: the server refuses, nothing written. */
    make_activity(&a, "odd", 2);
    a.items[1].stock = (int64_t)INT_MAX + 1;
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "item 2 (sku \"SKU-2\")") != NULL && strstr(err, "stock") != NULL, "message: %s", err);
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM activities"), 0);
    a.items[1].stock = 1;

    /* Bytes that are not UTF-8: refused (strict mode), not mangled. */
    snprintf(a.items[0].title, sizeof(a.items[0].title), "bad \xff\xfe title");
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "item 1") != NULL, "message: %s", err);
    snprintf(a.items[0].title, sizeof(a.items[0].title), "ok");

    /* Not NUL-terminated strings. */
    memset(a.name, 'n', sizeof(a.name));
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "name is longer") != NULL, "message: %s", err);
    snprintf(a.name, sizeof(a.name), "odd");
    memset(a.items[1].sku, 's', sizeof(a.items[1].sku));
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "item 2") != NULL, "message: %s", err);
    snprintf(a.items[1].sku, sizeof(a.items[1].sku), "SKU-2");

    /* Times DATETIME cannot hold. */
    a.ends_at_ms = INT64_MAX;
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "years 1000..9999") != NULL, "message: %s", err);
    a.ends_at_ms = T0;
    a.publish_at_ms = INT64_MIN;
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    a.publish_at_ms = T0;

    /* Items announced but absent. */
    free(a.items);
    a.items = NULL;
    ck_assert_int_eq(sk_store_activity_create(&sdb, &a, err, sizeof(err)), SK_ERR);
    ck_assert_msg(strstr(err, "no item array") != NULL, "message: %s", err);
    a.n_items = 0;
    ck_assert_int_eq(query_int(&sdb, "SELECT COUNT(*) FROM activities"), 0);

    /* Odd but storable values: the store keeps them (validation is the admin layer's). */
    make_activity(&a, "", 1);
    a.items[0].price_cents = -5;
    a.items[0].stock = 0;
    a.items[0].per_user_limit = UINT32_MAX;
    a.starts_at_ms = T0 + 5 * HOUR;
    a.ends_at_ms = T0;
    ck_assert_msg(sk_store_activity_create(&sdb, &a, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_int_eq(sk_store_activity_list(&sdb, 0, &list, &n, err, sizeof(err)), SK_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(list[0].name, "");
    ck_assert_int_eq(list[0].items[0].price_cents, -5);
    ck_assert_uint_eq(list[0].items[0].per_user_limit, UINT32_MAX);
    sk_activity_list_free(list, n);
    sk_activity_free(&a);

    /* Null arguments and a closed connection: errors, no crash. */
    ck_assert_int_eq(sk_store_activity_create(&sdb, NULL, err, sizeof(err)), SK_ERR);
    ck_assert_int_eq(sk_store_activity_get(&sdb, 1, NULL, err, sizeof(err)), SK_ERR);
    ck_assert_int_eq(sk_store_activity_list(&sdb, 0, NULL, &n, err, sizeof(err)), SK_ERR);
    {
        struct sk_db closed;

        memset(&closed, 0, sizeof(closed));
        ck_assert_int_eq(sk_store_activity_delete(&closed, 1, err, sizeof(err)), SK_ERR);
        ck_assert_msg(strstr(err, "not connected") != NULL, "message: %s", err);
        ck_assert_int_eq(sk_store_activity_transition(&closed, 1, 1, SK_ACT_ENDED, -1, NULL, 0), SK_ERR);
    }
    sk_activity_list_free(NULL, 0);
    sk_activity_free(NULL);
}
END_TEST

/* A store call on a connection that the server dropped fails cleanly, and the
 * caller's sk_db_ping brings it back. */
START_TEST(test_store_after_disconnect)
{
    struct sk_db killer;
    struct sk_activity got;
    uint64_t id = create_activity("survivor", 1);
    char sql[64];

    open_db(&killer, NULL);
    snprintf(sql, sizeof(sql), "KILL CONNECTION %lu", mysql_thread_id(sdb.conn));
    ck_assert_int_eq(sk_db_exec(&killer, sql, err, sizeof(err)), SK_OK);
    sk_db_close(&killer);
    memset(&got, 0x5a, sizeof(got));
    ck_assert_int_eq(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)), SK_ERR);
    ck_assert_uint_eq(got.id, 0x5a5a5a5a5a5a5a5aULL);
    ck_assert_int_eq(sk_db_ping(&sdb, err, sizeof(err)), SK_OK);
    ck_assert_msg(sk_store_activity_get(&sdb, id, &got, err, sizeof(err)) == SK_OK, "%s", err);
    ck_assert_str_eq(got.name, "survivor");
    sk_activity_free(&got);
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc;

    tc = tcase_create("connect");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_unreachable);
    tcase_add_test(tc, test_open_bad_args);
    tcase_add_test(tc, test_open_session);
    tcase_add_test(tc, test_ping_reconnects);
    tcase_add_test(tc, test_exec_error);
    tcase_add_test(tc, test_time_conversion);
    suite_add_tcase(s, tc);

    tc = tcase_create("migrate");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_migrate_from_empty_and_rerun);
    tcase_add_test(tc, test_migrated_keys_hold);
    tcase_add_test(tc, test_migrate_concurrent);
    tcase_add_test(tc, test_migrate_broken_stops);
    tcase_add_test(tc, test_migrate_data_migration_atomic);
    tcase_add_test(tc, test_migrate_bad_list);
    suite_add_tcase(s, tc);

    tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, store_setup, store_teardown);
    tcase_add_test(tc, test_store_state_names);
    tcase_add_test(tc, test_store_create_get);
    tcase_add_test(tc, test_store_get_unknown);
    tcase_add_test(tc, test_store_no_publish_time_no_items);
    tcase_add_test(tc, test_store_list_mask);
    tcase_add_test(tc, test_store_update_draft);
    tcase_add_test(tc, test_store_update_refused);
    tcase_add_test(tc, test_store_delete);
    tcase_add_test(tc, test_store_transition_cas);
    tcase_add_test(tc, test_store_transition_race);
    tcase_add_test(tc, test_store_duplicate_sku);
    tcase_add_test(tc, test_store_odd_values);
    tcase_add_test(tc, test_store_after_disconnect);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(db_suite());
    int failed;

    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
