/*
 * One asynchronous Redis connection bound to one libuv loop (hiredis 0.14 async +
 * adapters/libuv.h), shared by the plugins that talk to Redis (the redis stock
 * plugin, the reservation-log reader of the queue plugins). It runs a fixed set of
 * Lua scripts (sk_rconn_eval) and any other command (sk_rconn_command).
 *
 * It connects by itself and keeps connecting: on connect it sends CLIENT SETNAME,
 * AUTH (when a password is set), SELECT (when db != 0) and SCRIPT LOAD for every
 * script, and is ready once all of them have answered. When the connection drops,
 * a connect attempt fails or takes longer than connect_timeout_ms, or a command is
 * not answered within command_timeout_ms (plus its block time, for a blocking
 * command), the connection is thrown away (every command in flight fails) and a new
 * one is attempted after a back-off that doubles from 100 ms up to 5 s.
 *
 * Commands run only while ready: otherwise they fail fast with "redis not
 * connected". Every accepted command completes exactly once, from the loop, never
 * from inside the call that started it. Redis answers a connection's commands in
 * the order they were sent, so a command sent after a blocking one (XREADGROUP
 * BLOCK) waits for it, and its deadline is never earlier than that one's.
 *
 * Everything here runs on the loop's thread. Internal to the plugins: built into
 * plugins/common/libskredis.la with hidden visibility, never exported by a .so.
 */
#ifndef SK_REDIS_CONN_H
#define SK_REDIS_CONN_H

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
    struct sk_metric *errors;     /* commands that failed (for sk_rconn_command: that got
                                     no answer; its caller judges error replies),
                                     handshakes that failed */
    struct sk_metric *reconnects; /* connect attempts after the first */
};

struct sk_rconn;

/* Completion of a command: either `reply` or `err` (a sentence: no answer came,
 * the connection is closing, …) is set. Both are valid only during the call.
 * For sk_rconn_eval and sk_rconn_fail `reply` is never an error reply (an error
 * reply comes as err "redis: <its text>"); for sk_rconn_command it may be one
 * (REDIS_REPLY_ERROR: Redis ran the command and refused it, e.g. BUSYGROUP), since
 * callers of plain commands often expect some errors. sk_rconn_defer's callback
 * gets both NULL. */
typedef void (*sk_rconn_cb)(void *arg, const redisReply *reply, const char *err);

/* Make a connection on `loop` and start connecting. conf is copied; scripts
 * (NULL when nscripts is 0), host and the metrics behind m must outlive the
 * connection (host is used for its logger and metrics only). On failure return
 * SK_ERR with a sentence in errbuf (SK_ERRLEN) and leave *out untouched. Call on
 * the loop's thread. */
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

/* Send any command (argv copied, binary-safe: argvlen[i] bytes of argv[i], or
 * strlen when argvlen is NULL), e.g. XADD, XACK, XINFO. It must answer with one
 * reply (no SUBSCRIBE, MONITOR). Returns SK_OK when cb will run exactly once later
 * (with the reply, possibly an error reply, or err), SK_ERR (cb never runs) when c
 * is closing, argc < 1 or memory ran out. It fails fast when not connected and
 * times out after command_timeout_ms, as sk_rconn_eval does. */
int sk_rconn_command(struct sk_rconn *c, int argc, const char *const *argv, const size_t *argvlen, sk_rconn_cb cb,
                     void *arg);

/* The same for a command that Redis may hold for up to block_ms before it answers
 * (XREADGROUP … BLOCK block_ms, BLPOP): it times out after block_ms +
 * command_timeout_ms instead. block_ms is the caller's promise; a command that
 * blocks longer (BLOCK 0: for ever) trips the timeout and resets the connection. */
int sk_rconn_command_block(struct sk_rconn *c, unsigned block_ms, int argc, const char *const *argv,
                           const size_t *argvlen, sk_rconn_cb cb, void *arg);

/* Run cb once, later, from the loop, with reply and err both NULL: for a caller
 * that has its answer already but must not call back from inside its own call.
 * Works whether connected or not; it is queued behind nothing (it may run before
 * commands sent earlier have answered). SK_ERR (cb never runs) when c is closing
 * or memory ran out. On sk_rconn_close a deferred cb still runs (before close
 * returns, or right after the current callback), with both NULL. */
int sk_rconn_defer(struct sk_rconn *c, sk_rconn_cb cb, void *arg);

/* Close the connection: every pending command fails with "redis connection
 * closed" before this returns (or, when called from inside one of its callbacks,
 * right after that callback returns); its handles close and its memory is freed
 * from the loop, which must keep running until they have. c is invalid after. */
void sk_rconn_close(struct sk_rconn *c);

#endif
