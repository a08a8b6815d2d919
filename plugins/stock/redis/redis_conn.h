/*
 * One asynchronous Redis connection bound to one libuv loop (hiredis 0.14 async +
 * adapters/libuv.h), that runs a fixed set of Lua scripts.
 *
 * It connects by itself and keeps connecting: on connect it sends CLIENT SETNAME,
 * AUTH (when a password is set), SELECT (when db != 0) and SCRIPT LOAD for every
 * script, and is ready once all of them have answered. When the connection drops,
 * a connect attempt fails or takes longer than connect_timeout_ms, or a command is
 * not answered within command_timeout_ms, the connection is thrown away (every
 * command in flight fails) and a new one is attempted after a back-off that doubles
 * from 100 ms up to 5 s.
 *
 * Commands run only while ready: otherwise they fail fast with "redis not
 * connected". Every accepted command completes exactly once, from the loop, never
 * from inside sk_rconn_eval.
 *
 * Everything here runs on the loop's thread. Names are hidden in the plugin .so.
 */
#ifndef SK_RSTOCK_REDIS_CONN_H
#define SK_RSTOCK_REDIS_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <seckill/plugin.h>
#include <uv.h>

struct sk_rconn_conf {
    char host[256];      /* numeric address (resolved before) */
    char host_name[256]; /* as configured, for messages */
    int port;
    int db;                      /* SELECTed when not 0 */
    char password[256];          /* AUTH when not "" */
    unsigned connect_timeout_ms; /* TCP connect plus the handshake */
    unsigned command_timeout_ms; /* from the call to the reply */
    const char *client_name;     /* CLIENT SETNAME; static, may be NULL */
};

/* A script the connection loads and runs; the array is static and outlives the
 * connection. */
struct sk_rconn_script {
    const char *name;
    const char *text;
};

/* Metrics the connection counts into (any may be NULL); owned by the host. */
struct sk_rconn_metrics {
    struct sk_metric *commands;   /* commands written to Redis */
    struct sk_metric *errors;     /* commands that failed, handshakes that failed */
    struct sk_metric *reconnects; /* connect attempts after the first */
};

struct sk_rconn;

/* Completion of sk_rconn_eval: either `reply` (the script's answer, never an error
 * reply) or `err` (a sentence) is set. Both are valid only during the call. */
typedef void (*sk_rconn_cb)(void *arg, const redisReply *reply, const char *err);

/* Make a connection on `loop` and start connecting. conf is copied; scripts,
 * host and the metrics behind m must outlive the connection (host is used for its
 * logger only). On failure return SK_ERR with a sentence in errbuf (SK_ERRLEN)
 * and leave *out untouched. Call on the loop's thread. */
int sk_rconn_open(uv_loop_t *loop, const struct sk_rconn_conf *conf, const struct sk_rconn_script *scripts,
                  size_t nscripts, const struct sk_host *host, const struct sk_rconn_metrics *m, struct sk_rconn **out,
                  char *errbuf);

/* 1 when commands can run now (connected, handshake done), else 0. */
int sk_rconn_ready(const struct sk_rconn *c);

/* Run script number `script` with nkeys keys and nargs arguments (copied; the
 * caller keeps its strings). Returns SK_OK when cb will run exactly once later, or
 * SK_ERR (cb never runs) when c is closing, the script number is unknown or memory
 * ran out. */
int sk_rconn_eval(struct sk_rconn *c, size_t script, size_t nkeys, const char *const *keys, size_t nargs,
                  const char *const *args, sk_rconn_cb cb, void *arg);

/* Fail a call that never reached Redis (bad arguments): cb runs once, later, from
 * the loop, with `err` (copied). Returns SK_ERR (cb never runs) when c is closing
 * or memory ran out. */
int sk_rconn_fail(struct sk_rconn *c, const char *err, sk_rconn_cb cb, void *arg);

/* Close the connection: every pending command fails with "redis connection
 * closed" before this returns (or, when called from inside one of its callbacks,
 * right after that callback returns); its handles close and its memory is freed
 * from the loop, which must keep running until they have. c is invalid after. */
void sk_rconn_close(struct sk_rconn *c);

#endif
