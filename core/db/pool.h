/*
 * A fixed set of MariaDB connections for blocking work that event loops hand to
 * libuv's thread pool (uv_queue_work), so that a buyer's loop never waits on
 * MariaDB. Connections are opened on first use and reopened after a failure.
 */
#ifndef SK_DB_POOL_H
#define SK_DB_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "db.h"

struct sk_db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sk_db *conns;
    char *in_use;
    size_t n;
};

/* n connections to the config's MariaDB (none opened yet). SK_ERR on OOM. */
int sk_db_pool_init(struct sk_db_pool *p, const struct sk_config *cfg, size_t n);
/* Take a connection (waits while all are taken), connected or with err set and
 * NULL returned when MariaDB cannot be reached (the slot is given back). */
struct sk_db *sk_db_pool_get(struct sk_db_pool *p, char *err, size_t errlen);
void sk_db_pool_put(struct sk_db_pool *p, struct sk_db *db);
/* Close every connection; none may be taken. Safe on a zeroed pool. */
void sk_db_pool_free(struct sk_db_pool *p);

#endif
