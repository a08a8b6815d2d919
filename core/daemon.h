/*
 * The daemon: what seckilld is made of and how it starts and stops.
 *
 * Threads: the main thread loads everything, then waits for SIGTERM/SIGINT;
 * `workers` client threads serve buyers (one uv loop each, never blocking);
 * one admin thread serves operators (it may block on MariaDB); one scheduler
 * thread moves activities through their states (it may block on MariaDB).
 */
#ifndef SK_DAEMON_H
#define SK_DAEMON_H

#include <stdatomic.h>

#include "config.h"
#include "db/db.h"
#include "db/pool.h"
#include "http/server.h"
#include "plugin_host.h"
#include "stats.h"

struct sk_scheduler;
struct sk_catalog;
struct sk_writer;
struct sk_closer;
struct sk_jwt_verifier;

struct sk_daemon {
    struct sk_config cfg;                 /* owned */
    struct sk_loaded_plugin stock;        /* owned */
    const struct sk_stock_ops *stock_ops; /* inside stock */
    struct sk_loaded_plugin queue;        /* owned; desc NULL when not configured */
    struct sk_writer *writer;             /* the order writer; NULL without a queue */
    struct sk_loaded_plugin payment;      /* owned; desc NULL when not configured */
    const struct sk_payment_ops *pay_ops; /* inside payment, or NULL */
    struct sk_closer *closer;             /* times out unpaid orders */
    struct sk_db_pool pool;               /* MariaDB for the loops' thread-pool work */
    struct sk_http_server *client;        /* buyers */
    struct sk_http_server *admin;         /* operators */
    struct sk_scheduler *sched;
    struct sk_catalog *catalog;           /* published and running activities; the scheduler writes */
    atomic_int db_ok;                     /* last MariaDB check of the scheduler */
    atomic_llong started_at_ms;
    struct sk_stats stats;                /* sampled by the scheduler */
};

/* What every event loop of the daemon holds (its loop_data). */
struct sk_loop_ctx {
    struct sk_daemon *d;
    unsigned index;
    void *stock_conn;          /* this loop's stock plugin connection */
    void *pay_conn;            /* this loop's payment plugin connection, or NULL */
    /* This loop's buyer-token verifier (owned; never NULL once init succeeded), used
     * by this loop's thread only. Every loop gets one, admin and scheduler too:
     * sk_loop_ctx_init is shared by every kind of loop and is not told which serve
     * buyers, and one keyed HMAC context costs little next to a NULL case on the
     * hot path. */
    struct sk_jwt_verifier *jwt;
    struct sk_db db;           /* admin loop only: its MariaDB connection */
    int has_db;
};

/* Load the plugins, migrate MariaDB and start every thread. On failure return
 * SK_ERR with a sentence in err (SK_ERRLEN) with nothing left running; *d keeps
 * ownership of cfg either way (sk_daemon_stop frees it). */
int sk_daemon_start(struct sk_daemon *d, char *err);
/* Stop gracefully (in-flight requests finish) and free everything. Safe after a
 * failed start. */
void sk_daemon_stop(struct sk_daemon *d);

/* Attach/detach the stock plugin on a loop; shared by the HTTP loops and the
 * scheduler. */
int sk_loop_ctx_init(struct sk_daemon *d, unsigned index, uv_loop_t *loop, int with_db, struct sk_loop_ctx **out,
                     char *err);
void sk_loop_ctx_fini(struct sk_loop_ctx *ctx);

#endif
