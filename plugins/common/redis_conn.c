/*
 * One self-healing async Redis connection on a libuv loop; see redis_conn.h.
 *
 * Lifetimes, since hiredis frees its context from inside its own calls:
 *  - c->ac is the live context or NULL. Whoever decides a context is dead sets
 *    c->ac = NULL first, so that the callbacks hiredis then runs for it (every
 *    pending command with a NULL reply, onDisconnect) recognise a context that is
 *    no longer ours and only fail their command with c->reason.
 *  - hiredis calls every registered reply callback exactly once (with a NULL reply
 *    when the context dies), so a command handed to hiredis is freed in its reply
 *    callback and nowhere else.
 *  - The connection itself is freed when the last of its uv handles has closed,
 *    which is after hiredis has run every callback of its last context.
 *  - c->sent is in sending order, which is the order Redis answers in; each
 *    command's deadline is at least its predecessor's (a command cannot be
 *    answered before the one in front of it), so the list is also sorted by
 *    deadline and one timer on its head watches them all.
 */
#include "redis_conn.h"
#include "say.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define MAX_ARGS       1100 /* keys + arguments of one script call (a batch of 256 reservations: 6 + 3 + 4 * 256) */

enum rc_state {
    RC_WAITING,    /* no connection; the reconnect timer runs */
    RC_CONNECTING, /* TCP connect or handshake in progress */
    RC_READY,      /* commands run */
    RC_CLOSING,    /* sk_rconn_close was called */
};

enum hs_kind { HS_AUTH, HS_SETNAME, HS_SELECT, HS_SCRIPT };

/* privdata of one handshake command; lives in the connection. */
struct hs_tag {
    struct sk_rconn *c;
    enum hs_kind kind;
    size_t script;
};

enum rcmd_kind {
    RCMD_SCRIPT,  /* sk_rconn_eval */
    RCMD_PLAIN,   /* sk_rconn_command: error replies go to the caller */
    RCMD_FAILED,  /* sk_rconn_fail: never sent */
    RCMD_DEFERRED /* sk_rconn_defer: never sent, completes with nothing */
};

struct rcmd {
    struct rcmd *prev, *next;
    struct sk_rconn *c;
    sk_rconn_cb cb;
    void *arg;
    enum rcmd_kind kind;
    uint64_t deadline;   /* uv_now() ms */
    unsigned timeout_ms; /* what the deadline allows, for the message */
    size_t script;
    int evalled; /* already re-sent as EVAL after NOSCRIPT */
    int argc;
    const char **argv; /* script: [0] EVALSHA|EVAL, [1] sha|text, [2] numkeys, keys, args */
    size_t *argvlen;
    char err[SK_ERRLEN]; /* why it fails, when queued on failq */
};

struct rc_list {
    struct rcmd *head, *tail;
};

struct sk_rconn {
    uv_loop_t *loop;
    struct sk_rconn_conf conf;
    const struct sk_rconn_script *scripts;
    size_t nscripts;
    char (*sha)[41];     /* per script, from SCRIPT LOAD */
    struct hs_tag *tags; /* HS_SCRIPT tags first (one per script), then the others */
    const struct sk_host *host;
    struct sk_rconn_metrics m;

    redisAsyncContext *ac;
    enum rc_state state;
    size_t hs_left; /* handshake replies still expected */
    unsigned backoff_ms;
    char reason[SK_ERRLEN];       /* why there is no connection (or the last one died) */
    char logged[SK_ERRLEN];       /* last reason logged as a warning */
    char pending_drop[SK_ERRLEN]; /* a drop decided where hiredis forbids freeing */

    struct rc_list sent;  /* handed to hiredis, oldest (earliest deadline) first */
    struct rc_list failq; /* to fail from the loop */

    uv_timer_t reconnect_timer, connect_timer, cmd_timer;
    uv_idle_t idle;
    int handles_open;
};

static void rc_connect(struct sk_rconn *c);

static void list_append(struct rc_list *l, struct rcmd *cmd)
{
    cmd->next = NULL;
    cmd->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = cmd;
    else
        l->head = cmd;
    l->tail = cmd;
}

static void list_unlink(struct rc_list *l, struct rcmd *cmd)
{
    if (cmd->prev != NULL)
        cmd->prev->next = cmd->next;
    else
        l->head = cmd->next;
    if (cmd->next != NULL)
        cmd->next->prev = cmd->prev;
    else
        l->tail = cmd->prev;
    cmd->prev = cmd->next = NULL;
}

static void count(struct sk_rconn *c, struct sk_metric *m)
{
    if (m != NULL)
        c->host->metric_add(m, 1);
}

/* A store that flaps must not flood the log: the same reason twice in a row is
 * logged at debug level. */
static void log_down(struct sk_rconn *c)
{
    if (strcmp(c->logged, c->reason) != 0) {
        c->host->log(c->host, SK_LOG_WARN, "%s; retrying in %u ms", c->reason, c->backoff_ms);
        say(c->logged, "%s", c->reason);
    } else {
        c->host->log(c->host, SK_LOG_DEBUG, "%s; retrying in %u ms", c->reason, c->backoff_ms);
    }
}

static void on_reconnect_timer(uv_timer_t *t)
{
    struct sk_rconn *c = t->data;
    count(c, c->m.reconnects);
    rc_connect(c);
}

/* No connection now (c->reason says why): say so and arm the reconnect timer with
 * the current back-off, which doubles for the next time. */
static void rc_wait(struct sk_rconn *c)
{
    if (c->state == RC_CLOSING)
        return;
    c->state = RC_WAITING;
    uv_timer_stop(&c->connect_timer);
    log_down(c);
    uv_timer_start(&c->reconnect_timer, on_reconnect_timer, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* Throw the current context away (if any) and wait before the next attempt. The
 * commands in flight fail with `why`, from inside redisAsyncFree, or right after
 * the hiredis callback we are in returns. */
static void rc_drop(struct sk_rconn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    say(c->reason, "%s", why);
    c->ac = NULL;
    rc_wait(c);
    if (ac != NULL) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

/* hiredis is freeing c->ac by itself (read/write error, server closed it). */
static void rc_lost(struct sk_rconn *c, const redisAsyncContext *ac)
{
    say(c->reason, "redis connection to %s:%d lost: %s", c->conf.host_name, c->conf.port,
        ac->errstr[0] ? ac->errstr : "closed");
    c->ac = NULL;
    rc_wait(c);
}

static void finish(struct rcmd *cmd, const redisReply *reply, const char *err)
{
    struct sk_rconn *c = cmd->c;
    if (cmd->kind == RCMD_DEFERRED)
        err = NULL;
    if (err != NULL)
        count(c, c->m.errors);
    if (c->sent.head == NULL && c->state != RC_CLOSING)
        uv_timer_stop(&c->cmd_timer);
    cmd->cb(cmd->arg, reply, err);
    free(cmd);
}

static void on_idle(uv_idle_t *h)
{
    struct sk_rconn *c = h->data;
    struct rcmd *cmd = c->failq.head;
    /* Take the whole queue: commands failed by these callbacks wait for the next turn. */
    c->failq.head = c->failq.tail = NULL;
    while (cmd != NULL) {
        struct rcmd *next = cmd->next;
        finish(cmd, NULL, cmd->err);
        cmd = next;
    }
    if (c->failq.head == NULL && c->state != RC_CLOSING)
        uv_idle_stop(&c->idle);
}

static void fail_later(struct sk_rconn *c, struct rcmd *cmd)
{
    list_append(&c->failq, cmd);
    if (!uv_is_active((uv_handle_t *)&c->idle))
        uv_idle_start(&c->idle, on_idle);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* Hand cmd to hiredis: a plain command as it is, a script as EVALSHA (or EVAL
 * with the script text). */
static int rc_write(struct sk_rconn *c, struct rcmd *cmd, int eval)
{
    if (cmd->kind == RCMD_PLAIN) {
        /* argv as given */
    } else if (eval) {
        cmd->argv[0] = "EVAL";
        cmd->argv[1] = c->scripts[cmd->script].text;
    } else {
        cmd->argv[0] = "EVALSHA";
        cmd->argv[1] = c->sha[cmd->script];
    }
    if (cmd->kind == RCMD_SCRIPT) {
        cmd->argvlen[0] = strlen(cmd->argv[0]);
        cmd->argvlen[1] = strlen(cmd->argv[1]);
    }
    if (redisAsyncCommandArgv(c->ac, on_reply, cmd, cmd->argc, cmd->argv, cmd->argvlen) != REDIS_OK)
        return SK_ERR;
    count(c, c->m.commands);
    return SK_OK;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct rcmd *cmd = priv;
    struct sk_rconn *c = cmd->c;
    const redisReply *reply = r;
    char err[SK_ERRLEN];

    if (reply == NULL) {
        if (c->ac == ac)
            rc_lost(c, ac);
        list_unlink(&c->sent, cmd);
        /* A copy: the callback may detach, which rewrites c->reason. */
        say(err, "%s", c->reason);
        finish(cmd, NULL, err);
        return;
    }
    /* The server lost its script cache (restart, SCRIPT FLUSH, failover): send the
     * text once; EVAL caches it again for the next EVALSHA. */
    if (reply->type == REDIS_REPLY_ERROR && cmd->kind == RCMD_SCRIPT && !cmd->evalled && c->ac == ac &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        cmd->evalled = 1;
        if (rc_write(c, cmd, 1) == SK_OK)
            return;
    }
    list_unlink(&c->sent, cmd);
    if (reply->type == REDIS_REPLY_ERROR && cmd->kind == RCMD_SCRIPT) {
        say(err, "redis: %s", reply->str);
        finish(cmd, NULL, err);
    } else {
        finish(cmd, reply, NULL);
    }
}

static void rc_ready(struct sk_rconn *c)
{
    uv_timer_stop(&c->connect_timer);
    c->state = RC_READY;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->reason[0] = '\0';
    c->logged[0] = '\0';
    c->host->log(c->host, SK_LOG_INFO, "connected to redis at %s:%d (db %d)", c->conf.host_name, c->conf.port,
                 c->conf.db);
}

static const char *hs_name(enum hs_kind kind)
{
    switch (kind) {
    case HS_AUTH:
        return "AUTH";
    case HS_SETNAME:
        return "CLIENT SETNAME";
    case HS_SELECT:
        return "SELECT";
    case HS_SCRIPT:
        return "SCRIPT LOAD";
    }
    return "?";
}

static void on_handshake(redisAsyncContext *ac, void *r, void *priv)
{
    struct hs_tag *tag = priv;
    struct sk_rconn *c = tag->c;
    const redisReply *reply = r;
    char why[SK_ERRLEN];

    if (c->ac != ac) /* a context we already gave up */
        return;
    if (reply == NULL) {
        rc_lost(c, ac);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        say(why, "redis at %s:%d refused %s%s%s: %s", c->conf.host_name, c->conf.port, hs_name(tag->kind),
            tag->kind == HS_SCRIPT ? " of script " : "", tag->kind == HS_SCRIPT ? c->scripts[tag->script].name : "",
            reply->str);
        count(c, c->m.errors);
        rc_drop(c, why);
        return;
    }
    if (tag->kind == HS_SCRIPT) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            say(why, "redis at %s:%d: unexpected answer to SCRIPT LOAD of script %s", c->conf.host_name, c->conf.port,
                c->scripts[tag->script].name);
            count(c, c->m.errors);
            rc_drop(c, why);
            return;
        }
        memcpy(c->sha[tag->script], reply->str, 40);
        c->sha[tag->script][40] = '\0';
    }
    if (--c->hs_left == 0)
        rc_ready(c);
}

static int hs_send(struct sk_rconn *c, struct hs_tag *tag, int argc, const char **argv)
{
    if (redisAsyncCommandArgv(c->ac, on_handshake, tag, argc, argv, NULL) != REDIS_OK)
        return SK_ERR;
    count(c, c->m.commands);
    c->hs_left++;
    return SK_OK;
}

/* AUTH first: with requirepass nothing else is allowed before it. Pipelined: the
 * first refusal drops the connection, the rest is then ignored. */
static int rc_handshake(struct sk_rconn *c)
{
    struct hs_tag *extra = c->tags + c->nscripts;
    char db[16];
    int rc = SK_ERR;

    c->hs_left = 0;
    if (c->conf.password[0] != '\0') {
        const char *argv[] = {"AUTH", c->conf.password};
        if (hs_send(c, &extra[0], 2, argv) != SK_OK)
            goto out;
    }
    if (c->conf.client_name != NULL) {
        const char *argv[] = {"CLIENT", "SETNAME", c->conf.client_name};
        if (hs_send(c, &extra[1], 3, argv) != SK_OK)
            goto out;
    }
    if (c->conf.db != 0) {
        snprintf(db, sizeof(db), "%d", c->conf.db);
        const char *argv[] = {"SELECT", db};
        if (hs_send(c, &extra[2], 2, argv) != SK_OK)
            goto out;
    }
    for (size_t i = 0; i < c->nscripts; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", c->scripts[i].text};
        if (hs_send(c, &c->tags[i], 3, argv) != SK_OK)
            goto out;
    }
    rc = SK_OK;
out:
    return rc;
}

static void on_connect_timer(uv_timer_t *t)
{
    struct sk_rconn *c = t->data;
    char why[SK_ERRLEN];
    if (c->state != RC_CONNECTING)
        return;
    if (c->pending_drop[0] != '\0')
        say(why, "%s", c->pending_drop);
    else
        say(why, "connecting to redis at %s:%d timed out after %u ms", c->conf.host_name, c->conf.port,
            c->conf.connect_timeout_ms);
    c->pending_drop[0] = '\0';
    rc_drop(c, why);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    struct sk_rconn *c = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac; /* hiredis 0.14 passes it const */

    if (c == NULL || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when we return. */
        say(c->reason, "cannot connect to redis at %s:%d: %s", c->conf.host_name, c->conf.port, ac->errstr);
        c->ac = NULL;
        rc_wait(c);
        return;
    }
    if (rc_handshake(c) != SK_OK) {
        /* hiredis still uses the context after this callback: drop it from the loop. */
        say(c->pending_drop, "redis at %s:%d: cannot send the handshake: %s", c->conf.host_name, c->conf.port,
            ac->errstr[0] ? ac->errstr : "out of memory");
        uv_timer_start(&c->connect_timer, on_connect_timer, 0, 0);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct sk_rconn *c = ac->data;
    if (c != NULL && c->ac == ac)
        rc_lost(c, ac);
}

/*
 * hiredis 0.14's adapters/libuv.h loses socket errors: libuv reports POLLERR (a
 * refused connect, a reset) as status UV_EBADF and stops the handle, and the
 * adapter's callback returns without telling hiredis, which then waits forever. As
 * hiredis 1.0 does, hand the error to hiredis as the events it waited for, so that
 * its read or write finds the socket error. The adapter keeps doing the rest
 * (allocation, cleanup, closing the handle); the hooks below arm the poll with this
 * callback.
 */
static void poll_cb(uv_poll_t *handle, int status, int events)
{
    redisLibuvEvents *p = handle->data;
    int ev = status != 0 ? p->events : events;
    if (p->context != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

/* Wait for `events` on the socket. The adapter's own hooks restart the poll on
 * every call, and hiredis calls them for every command: in libuv each restart is an
 * EPOLL_CTL_DEL and a re-add. Here the poll is touched only when what it waits for
 * changes (or libuv stopped it after an error). */
static void set_events(redisLibuvEvents *p, int events)
{
    if (events == p->events && (events == 0 || uv_is_active((uv_handle_t *)&p->handle)))
        return;
    p->events = events;
    if (events != 0)
        uv_poll_start(&p->handle, events, poll_cb);
    else
        uv_poll_stop(&p->handle);
}

static void hook_add_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    set_events(p, p->events | UV_READABLE);
}

static void hook_del_read(void *privdata)
{
    redisLibuvEvents *p = privdata;
    set_events(p, p->events & ~UV_READABLE);
}

static void hook_add_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    set_events(p, p->events | UV_WRITABLE);
}

static void hook_del_write(void *privdata)
{
    redisLibuvEvents *p = privdata;
    set_events(p, p->events & ~UV_WRITABLE);
}

static void rc_connect(struct sk_rconn *c)
{
    redisAsyncContext *ac;

    c->state = RC_CONNECTING;
    c->pending_drop[0] = '\0';
    ac = redisAsyncConnect(c->conf.host, c->conf.port);
    if (ac == NULL) {
        say(c->reason, "cannot connect to redis at %s:%d: out of memory", c->conf.host_name, c->conf.port);
        goto fail;
    }
    if (ac->err) {
        say(c->reason, "cannot connect to redis at %s:%d: %s", c->conf.host_name, c->conf.port, ac->errstr);
        redisAsyncFree(ac);
        goto fail;
    }
    if (redisLibuvAttach(ac, c->loop) != REDIS_OK) {
        say(c->reason, "cannot watch the redis socket on the event loop");
        redisAsyncFree(ac);
        goto fail;
    }
    ac->ev.addRead = hook_add_read;
    ac->ev.delRead = hook_del_read;
    ac->ev.addWrite = hook_add_write;
    ac->ev.delWrite = hook_del_write;
    ac->data = c;
    c->ac = ac;
    /* Attached first: setting the connect callback starts waiting for writability. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* the loop's cached clock may be old (a loop made long before it runs): the
     * timeout counts from now */
    uv_update_time(c->loop);
    uv_timer_start(&c->connect_timer, on_connect_timer, c->conf.connect_timeout_ms, 0);
    return;
fail:
    rc_wait(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct sk_rconn *c = h->data;
    if (--c->handles_open > 0)
        return;
    free(c->sha);
    free(c->tags);
    free(c);
}

int sk_rconn_open(uv_loop_t *loop, const struct sk_rconn_conf *conf, const struct sk_rconn_script *scripts,
                  size_t nscripts, const struct sk_host *host, const struct sk_rconn_metrics *m, struct sk_rconn **out,
                  char *errbuf)
{
    struct sk_rconn *c = calloc(1, sizeof(*c));
    int rc = SK_ERR;

    if (c == NULL)
        goto oom;
    c->sha = calloc(nscripts ? nscripts : 1, sizeof(*c->sha));
    c->tags = calloc(nscripts + 3, sizeof(*c->tags));
    if (c->sha == NULL || c->tags == NULL)
        goto oom;
    c->loop = loop;
    c->conf = *conf;
    c->scripts = scripts;
    c->nscripts = nscripts;
    c->host = host;
    if (m != NULL)
        c->m = *m;
    c->backoff_ms = BACKOFF_MIN_MS;
    for (size_t i = 0; i < nscripts; i++)
        c->tags[i] = (struct hs_tag){.c = c, .kind = HS_SCRIPT, .script = i};
    c->tags[nscripts] = (struct hs_tag){.c = c, .kind = HS_AUTH};
    c->tags[nscripts + 1] = (struct hs_tag){.c = c, .kind = HS_SETNAME};
    c->tags[nscripts + 2] = (struct hs_tag){.c = c, .kind = HS_SELECT};

    /* uv_timer_init and uv_idle_init cannot fail on Linux (they only fill in the
     * struct), which is why nothing is unwound after them. */
    if (uv_timer_init(loop, &c->reconnect_timer) != 0 || uv_timer_init(loop, &c->connect_timer) != 0 ||
        uv_timer_init(loop, &c->cmd_timer) != 0 || uv_idle_init(loop, &c->idle) != 0) {
        snprintf(errbuf, SK_ERRLEN, "cannot set up timers on the event loop");
        goto fail;
    }
    c->handles_open = 4;
    c->reconnect_timer.data = c->connect_timer.data = c->cmd_timer.data = c->idle.data = c;
    say(c->reason, "connecting to redis at %s:%d", c->conf.host_name, c->conf.port);
    rc_connect(c);
    *out = c;
    rc = SK_OK;
    goto out;
oom:
    snprintf(errbuf, SK_ERRLEN, "out of memory");
fail:
    if (c != NULL) {
        free(c->sha);
        free(c->tags);
    }
    free(c);
out:
    return rc;
}

int sk_rconn_ready(const struct sk_rconn *c)
{
    return c != NULL && c->state == RC_READY;
}

static void on_cmd_timer(uv_timer_t *t)
{
    struct sk_rconn *c = t->data;
    struct rcmd *head = c->sent.head;
    uint64_t now = uv_now(c->loop);
    char why[SK_ERRLEN];

    if (head == NULL || c->state != RC_READY)
        return;
    if (head->deadline > now) {
        uv_timer_start(&c->cmd_timer, on_cmd_timer, head->deadline - now, 0);
        return;
    }
    /* The reply may still come: the only way to never misread it as the answer to
     * a later command is to drop the connection. */
    say(why, "redis command timed out after %u ms (connection to %s:%d reset)", head->timeout_ms, c->conf.host_name,
        c->conf.port);
    rc_drop(c, why);
}

/* One allocation: the command, its argv and argvlen arrays, then the strings. */
static struct rcmd *cmd_new(size_t script, size_t nkeys, const char *const *keys, size_t nargs, const char *const *args)
{
    size_t argc = 3 + nkeys + nargs;
    size_t bytes = sizeof(struct rcmd) + argc * (sizeof(char *) + sizeof(size_t)) + 24;
    struct rcmd *cmd;
    char *p;

    for (size_t i = 0; i < nkeys; i++)
        bytes += strlen(keys[i]) + 1;
    for (size_t i = 0; i < nargs; i++)
        bytes += strlen(args[i]) + 1;
    cmd = malloc(bytes);
    if (cmd == NULL)
        return NULL;
    memset(cmd, 0, sizeof(*cmd));
    cmd->kind = RCMD_SCRIPT;
    cmd->script = script;
    cmd->argc = (int)argc;
    cmd->argv = (const char **)(cmd + 1);
    cmd->argvlen = (size_t *)(cmd->argv + argc);
    p = (char *)(cmd->argvlen + argc);
    cmd->argvlen[2] = (size_t)snprintf(p, 24, "%zu", nkeys);
    cmd->argv[2] = p;
    p += cmd->argvlen[2] + 1;
    for (size_t i = 0; i < nkeys + nargs; i++) {
        const char *s = i < nkeys ? keys[i] : args[i - nkeys];
        size_t len = strlen(s);
        memcpy(p, s, len + 1);
        cmd->argv[3 + i] = p;
        cmd->argvlen[3 + i] = len;
        p += len + 1;
    }
    return cmd;
}

/* One allocation for a plain command: the command, its argv and argvlen arrays,
 * then copies of the arguments (each NUL-terminated, for the log's sake). */
static struct rcmd *cmd_new_plain(int argc, const char *const *argv, const size_t *argvlen)
{
    size_t n = (size_t)argc;
    size_t bytes = sizeof(struct rcmd) + n * (sizeof(char *) + sizeof(size_t));
    struct rcmd *cmd;
    char *p;

    for (size_t i = 0; i < n; i++)
        bytes += (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 1;
    cmd = malloc(bytes);
    if (cmd == NULL)
        return NULL;
    memset(cmd, 0, sizeof(*cmd));
    cmd->kind = RCMD_PLAIN;
    cmd->argc = argc;
    cmd->argv = (const char **)(cmd + 1);
    cmd->argvlen = (size_t *)(cmd->argv + n);
    p = (char *)(cmd->argvlen + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        memcpy(p, argv[i], len);
        p[len] = '\0';
        cmd->argv[i] = p;
        cmd->argvlen[i] = len;
        p += len + 1;
    }
    return cmd;
}

/* Send cmd (or fail it from the loop when there is no connection) and watch its
 * deadline. Always SK_OK: from here on cmd completes through its callback. */
static int rc_send(struct sk_rconn *c, struct rcmd *cmd, unsigned timeout_ms)
{
    uint64_t now = uv_now(c->loop);

    cmd->timeout_ms = timeout_ms;
    cmd->deadline = now + timeout_ms;
    if (c->state != RC_READY) {
        say(cmd->err, "redis not connected: %s", c->reason);
        fail_later(c, cmd);
        return SK_OK;
    }
    if (rc_write(c, cmd, 0) != SK_OK) {
        say(cmd->err, "redis refused the command: %s", c->ac->errstr[0] ? c->ac->errstr : "connection closing");
        fail_later(c, cmd);
        return SK_OK;
    }
    /* Answered in order: never before the command in front of it. */
    if (c->sent.tail != NULL && c->sent.tail->deadline > cmd->deadline)
        cmd->deadline = c->sent.tail->deadline;
    list_append(&c->sent, cmd);
    if (!uv_is_active((uv_handle_t *)&c->cmd_timer))
        uv_timer_start(&c->cmd_timer, on_cmd_timer, c->sent.head->deadline > now ? c->sent.head->deadline - now : 0, 0);
    return SK_OK;
}

int sk_rconn_eval(struct sk_rconn *c, size_t script, size_t nkeys, const char *const *keys, size_t nargs,
                  const char *const *args, sk_rconn_cb cb, void *arg)
{
    struct rcmd *cmd;

    if (c == NULL || cb == NULL || c->state == RC_CLOSING || script >= c->nscripts || nkeys + nargs > MAX_ARGS)
        return SK_ERR;
    cmd = cmd_new(script, nkeys, keys, nargs, args);
    if (cmd == NULL)
        return SK_ERR;
    cmd->c = c;
    cmd->cb = cb;
    cmd->arg = arg;
    return rc_send(c, cmd, c->conf.command_timeout_ms);
}

int sk_rconn_command_block(struct sk_rconn *c, unsigned block_ms, int argc, const char *const *argv,
                           const size_t *argvlen, sk_rconn_cb cb, void *arg)
{
    struct rcmd *cmd;
    unsigned timeout;

    if (c == NULL || cb == NULL || c->state == RC_CLOSING || argc < 1 || argv == NULL)
        return SK_ERR;
    cmd = cmd_new_plain(argc, argv, argvlen);
    if (cmd == NULL)
        return SK_ERR;
    cmd->c = c;
    cmd->cb = cb;
    cmd->arg = arg;
    timeout = block_ms > UINT32_MAX - c->conf.command_timeout_ms ? UINT32_MAX : block_ms + c->conf.command_timeout_ms;
    return rc_send(c, cmd, timeout);
}

int sk_rconn_command(struct sk_rconn *c, int argc, const char *const *argv, const size_t *argvlen, sk_rconn_cb cb,
                     void *arg)
{
    return sk_rconn_command_block(c, 0, argc, argv, argvlen, cb, arg);
}

/* A command that never reaches Redis and completes from the loop's idle turn:
 * deferred (nothing) or failed (with err, copied). */
static int complete_later(struct sk_rconn *c, enum rcmd_kind kind, const char *err, sk_rconn_cb cb, void *arg)
{
    struct rcmd *cmd;

    if (c == NULL || cb == NULL || c->state == RC_CLOSING)
        return SK_ERR;
    cmd = cmd_new(0, 0, NULL, 0, NULL);
    if (cmd == NULL)
        return SK_ERR;
    cmd->kind = kind;
    cmd->c = c;
    cmd->cb = cb;
    cmd->arg = arg;
    if (err != NULL)
        say(cmd->err, "%s", err);
    fail_later(c, cmd);
    return SK_OK;
}

int sk_rconn_defer(struct sk_rconn *c, sk_rconn_cb cb, void *arg)
{
    return complete_later(c, RCMD_DEFERRED, NULL, cb, arg);
}

int sk_rconn_fail(struct sk_rconn *c, const char *err, sk_rconn_cb cb, void *arg)
{
    return complete_later(c, RCMD_FAILED, err, cb, arg);
}

void sk_rconn_close(struct sk_rconn *c)
{
    struct rcmd *cmd;

    if (c == NULL || c->state == RC_CLOSING)
        return;
    c->state = RC_CLOSING;
    rc_drop(c, "redis connection closed");
    /* Fail what waits on the queue now: the idle handle is about to close. New
     * commands are refused (SK_ERR) from here on, so this ends. */
    for (cmd = c->failq.head; cmd != NULL; cmd = c->failq.head) {
        list_unlink(&c->failq, cmd);
        finish(cmd, NULL, cmd->err);
    }
    uv_close((uv_handle_t *)&c->reconnect_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->connect_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->cmd_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}
