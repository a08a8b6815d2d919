/*
 * MariaDB access: connections and schema migrations.
 *
 * Every function here blocks on the network. Call them only from threads that may
 * block (admin thread, scheduler thread, order writer threads), never from a
 * buyer-facing worker loop.
 */
#ifndef SK_DB_H
#define SK_DB_H

#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "../config.h"

/* Results of the stores that are not errors of the store itself. */
#define SK_STORE_NOT_FOUND 1       /* no such activity, order, … */
#define SK_STORE_CONFLICT 2        /* state does not allow it (e.g. update while running) */

/* One connection. Not thread-safe: one thread uses it at a time. */
struct sk_db {
    MYSQL *conn;
    char host[128];
    unsigned port;
    char user[64];
    char password[128];
    char database[64];
};

/* Connect (UTF-8, UTC session time zone, strict sql_mode so that out-of-range or
 * badly encoded values are errors rather than silently changed, autocommit on,
 * 5 s connect/read/write timeouts, auto-reconnect off: the caller's next call
 * reconnects through sk_db_ping). `database` may be NULL or "" for none. The strings
 * are copied. SK_ERR with a sentence in err and *db untouched. */
int sk_db_open(struct sk_db *db, const char *host, unsigned port, const char *user, const char *password,
               const char *database, char *err, size_t errlen);
/* Open with the config's mariadb section. */
int sk_db_open_config(struct sk_db *db, const struct sk_config *cfg, char *err, size_t errlen);
/* Reconnect when the server went away; SK_OK when usable afterwards. */
int sk_db_ping(struct sk_db *db, char *err, size_t errlen);
/* Close and zero; safe on a zeroed or already closed struct. */
void sk_db_close(struct sk_db *db);

/* Run one statement without results. SK_ERR with the server's message in err. */
int sk_db_exec(struct sk_db *db, const char *sql, char *err, size_t errlen);

/* Apply every migration of sql/ (compiled into the daemon) that the database has
 * not recorded in schema_migrations, in order, each in its own transaction where
 * MariaDB allows. Under a named lock, so several daemons starting at once apply
 * each migration exactly once. *applied gets how many were applied now. */
int sk_db_migrate(struct sk_db *db, int *applied, char *err, size_t errlen);

/* The compiled-in migrations (generated from sql/NNN_name.sql at build time). */
struct sk_migration {
    int version;           /* NNN */
    const char *name;      /* "001_init" */
    const char *sql;       /* statements separated by ";\n" */
};
extern const struct sk_migration sk_migrations[];
extern const size_t sk_migrations_count;

/* What sk_db_migrate does, for any list (tests pass their own). `list` holds n
 * migrations in strictly increasing version order (SK_ERR otherwise, nothing run);
 * it is only read. A statement ends with ";" at the end of a line; statements that
 * are only blank or "--"/"#" comment lines are skipped. A failing statement stops
 * the run: SK_ERR with "migration <name>: statement <k>: <server's error>" in err,
 * that migration and every later one stay unrecorded, *applied untouched. */
int sk_db_migrate_list(struct sk_db *db, const struct sk_migration *list, size_t n, int *applied, char *err,
                       size_t errlen);

/* Times: the schema stores instants as DATETIME(3) holding UTC (every session runs
 * with time_zone '+00:00'). These convert between milliseconds since the epoch and
 * the MYSQL_TIME of a prepared statement's DATETIME parameter or result.
 * sk_db_time_from_ms: SK_ERR when ms is outside DATETIME's years 1000..9999 (*out
 * untouched). sk_db_time_to_ms: the inverse (sub-millisecond digits dropped). */
int sk_db_time_from_ms(int64_t ms, MYSQL_TIME *out);
int64_t sk_db_time_to_ms(const MYSQL_TIME *t);

#endif
