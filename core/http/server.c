/*
 * The HTTP server: N worker threads, each with its own uv loop, h2o context and
 * SO_REUSEPORT listening socket, so the kernel spreads connections over the threads
 * and no request ever crosses a thread.
 *
 * One h2o handler on "/" receives every request and dispatches it through the
 * router. The h2o global configuration is shared and read-only once the threads run.
 *
 * Stop, on each loop, driven by a uv_async from the stopping thread:
 *   1. DRAINING: close the listener, tell h2o to stop keep-alive, let requests in
 *      flight finish for up to grace_ms (new requests on open connections are still
 *      served, and every answer closes its connection);
 *   2. CLOSING: answer whatever is still running with 503, shutdown(SHUT_RD) every
 *      connection so that h2o sees EOF on idle ones and closes them, and after
 *      CLOSE_WAIT_MS shutdown(SHUT_RDWR) the stragglers;
 *   3. when the last connection is closed: stop the loop, then (outside it) run
 *      loop_fini, dispose of the h2o context and run the loop until every handle is
 *      closed.
 */
#include "core/http/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>

#include "core/http/request.h"
#include "core/http/router.h"
#include "core/log.h"

/* h2o buffers a body up to its own limit before our handler sees it; bodies between
 * max_body_bytes and max_body_bytes + BODY_SLACK get our JSON 413, larger ones h2o's
 * plain-text 413 (and the connection is closed). See docs/http.md. */
#define BODY_SLACK (64 * 1024)
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DEFAULT_IDLE_MS 10000
#define MAX_THREADS 256
#define LISTEN_BACKLOG 1024
#define DRAIN_TICK_MS 10
#define CLOSE_WAIT_MS 1000
#define LOOP_END_MS 5000

enum phase { PHASE_RUNNING, PHASE_DRAINING, PHASE_CLOSING, PHASE_DONE };

struct sk_http_worker;

/* One accepted connection; h2o owns the socket, we own this record for counting and
 * for the stop. */
struct sk_http_conn {
    uv_tcp_t tcp; /* first: h2o's close callback hands us &tcp */
    struct sk_http_worker *w;
    struct sk_http_conn *prev, *next;
};

struct sk_http_worker {
    struct sk_http_server *srv;
    unsigned index;
    pthread_t thread;
    int thread_started;
    int fd; /* the listening socket until the loop owns it, then -1 */

    /* start-up report, under srv->lock: 0 starting, 1 serving, -1 failed */
    int report;
    char err[SK_ERRLEN];

    uv_loop_t loop;
    int loop_ready;
    h2o_context_t ctx;
    int ctx_ready;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listener_ready;
    uv_async_t stop_async;
    uv_timer_t drain_timer;
    int handles_ready;
    int fini_due;

    enum phase phase;
    uint64_t deadline; /* DRAINING: end of grace; CLOSING: when to SHUT_RDWR, then give up */
    int hard_closed;
    int accept_pending;
    size_t n_conns;
    struct sk_http_conn *conns;
    struct sk_http_reqset reqs;
};

struct sk_http_server {
    struct sk_http_server_conf conf;
    char *name;
    char *host;
    char *who; /* "http <name>" for the log */
    struct sk_http_router *router;
    h2o_globalconf_t gc;
    int gc_ready;
    struct sk_http_worker *workers;
    unsigned n_workers;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic unsigned grace_ms;
};

struct sk_http_h2o_handler {
    h2o_handler_t super;
    struct sk_http_server *srv;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        sk_err("http", "out of memory");
        abort();
    }
    return p;
}

/* --- connections ------------------------------------------------------------------ */

static void accept_one(struct sk_http_worker *w);

static void free_unlinked_conn(uv_handle_t *handle)
{
    free(handle); /* &conn->tcp == conn */
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct sk_http_conn *c = (struct sk_http_conn *)handle;
    struct sk_http_worker *w = c->w;

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    free(c);
    /* a connection we left in the backlog can come in now */
    if (w->accept_pending && w->phase == PHASE_RUNNING) {
        w->accept_pending = 0;
        accept_one(w);
    }
}

static void accept_one(struct sk_http_worker *w)
{
    struct sk_http_conn *c = xcalloc(1, sizeof(*c));
    h2o_socket_t *sock;
    int rc;

    c->w = w;
    rc = uv_tcp_init(&w->loop, &c->tcp);
    if (rc != 0) {
        sk_warn(w->srv->who, "loop %u: cannot set up a connection: %s", w->index, uv_strerror(rc));
        free(c);
        goto out;
    }
    rc = uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        sk_warn(w->srv->who, "loop %u: accept failed: %s", w->index, uv_strerror(rc));
        uv_close((uv_handle_t *)&c->tcp, free_unlinked_conn);
        goto out;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1); /* small JSON answers: do not wait for Nagle */
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&w->accept_ctx, sock);
out:
    return;
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct sk_http_worker *w = listener->data;

    if (status != 0) {
        sk_warn(w->srv->who, "loop %u: accept failed: %s", w->index, uv_strerror(status));
    } else if (w->srv->conf.max_connections != 0 && w->n_conns >= w->srv->conf.max_connections) {
        /* Not calling uv_accept makes libuv stop polling the listener until we do: the
         * rest of the connections wait in the kernel's backlog. */
        w->accept_pending = 1;
    } else if (w->phase == PHASE_RUNNING) {
        accept_one(w);
    }
}

static void shutdown_conns(struct sk_http_worker *w, int how)
{
    struct sk_http_conn *c;
    uv_os_fd_t fd;

    for (c = w->conns; c != NULL; c = c->next) {
        if (uv_is_closing((uv_handle_t *)&c->tcp))
            continue;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            (void)shutdown(fd, how); /* ENOTCONN when the peer is already gone: nothing to do */
    }
}

/* --- dispatch ------------------------------------------------------------------------ */

static int on_req(h2o_handler_t *self, h2o_req_t *h)
{
    struct sk_http_server *srv = ((struct sk_http_h2o_handler *)self)->srv;
    struct sk_http_worker *w = H2O_STRUCT_FROM_MEMBER(struct sk_http_worker, ctx, h->conn->ctx);
    size_t path_len = h->query_at != SIZE_MAX ? h->query_at : h->path.len;
    const struct sk_http_route *route;
    struct sk_http_match m;
    struct sk_http_req *req;
    int rc;

    sk_http_router_match(srv->router, h->method.base, h->method.len, h->path.base, path_len, &m);
    req = sk_http_req_new(&w->reqs, h, &m);
    if (w->phase >= PHASE_CLOSING) {
        sk_http_error(req, 503, "overloaded", "the server is shutting down");
        goto out;
    }
    if (m.result == SK_HTTP_MATCH_NOT_FOUND) {
        sk_http_error(req, 404, "not_found", "no such resource: %.*s",
                      (int)(path_len > SK_HTTP_ECHO_MAX ? SK_HTTP_ECHO_MAX : path_len), h->path.base);
        goto out;
    }
    if (m.result == SK_HTTP_MATCH_BAD_METHOD) {
        sk_http_error(req, 405, "method_not_allowed", "%.*s is not allowed here; allowed: %s",
                      (int)(h->method.len > 16 ? 16 : h->method.len), h->method.base, m.allow);
        goto out;
    }
    route = &srv->conf.routes[m.route];
    if (h->entity.len > w->reqs.max_body_bytes) {
        sk_http_error(req, 413, "payload_too_large", "the request body has %zu bytes; at most %zu are accepted",
                      h->entity.len, w->reqs.max_body_bytes);
        goto out;
    }
    if (!route->public_route && srv->conf.authorize != NULL) {
        w->reqs.dispatching = req;
        rc = srv->conf.authorize(req);
        if (w->reqs.dispatching != req)
            goto out; /* the hook answered (and so freed) the request */
        w->reqs.dispatching = NULL;
        if (rc != SK_OK) {
            sk_err(srv->who, "the authorize hook refused %s without answering; answering 401", route->pattern);
            sk_http_error(req, 401, "unauthorized", "not authorized");
            goto out;
        }
    }
    route->handler(req);
out:
    return 0;
}

/* --- the loop's life ---------------------------------------------------------------- */

static void abort_pending(struct sk_http_worker *w)
{
    struct sk_http_req *req;

    for (req = w->reqs.live; req != NULL; req = req->next)
        if (req->h2o != NULL)
            sk_http_req_abort(req, 503, "overloaded", "the server is shutting down");
}

static void on_drain_tick(uv_timer_t *timer)
{
    struct sk_http_worker *w = timer->data;
    uint64_t now = uv_now(&w->loop);

    if (w->phase == PHASE_DRAINING) {
        if (w->reqs.n_pending > 0 && now < w->deadline)
            goto out;
        if (w->reqs.n_pending > 0)
            sk_warn(w->srv->who, "loop %u: %zu request(s) still running after the grace period; answering 503",
                    w->index, w->reqs.n_pending);
        w->phase = PHASE_CLOSING;
        w->deadline = now + CLOSE_WAIT_MS;
        abort_pending(w);
        shutdown_conns(w, SHUT_RD);
    }
    if (w->phase != PHASE_CLOSING)
        goto out;
    /* requests parsed from bytes that were already buffered get the same answer */
    abort_pending(w);
    if (w->n_conns > 0 && now < w->deadline)
        goto out;
    if (w->n_conns > 0 && !w->hard_closed) {
        w->hard_closed = 1;
        w->deadline = now + CLOSE_WAIT_MS;
        shutdown_conns(w, SHUT_RDWR);
        goto out;
    }
    if (w->n_conns > 0)
        sk_err(w->srv->who, "loop %u: %zu connections did not close; stopping anyway", w->index, w->n_conns);
    w->phase = PHASE_DONE;
    uv_timer_stop(&w->drain_timer);
    uv_stop(&w->loop);
out:
    return;
}

static void on_stop_async(uv_async_t *async)
{
    struct sk_http_worker *w = async->data;

    if (w->phase != PHASE_RUNNING)
        goto out;
    w->phase = PHASE_DRAINING;
    w->reqs.draining = 1;
    if (w->listener_ready && !uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
    /* What h2o_context_request_shutdown does for HTTP/1 (answers say "Connection:
     * close"), without arming HTTP/2's GOAWAY timer: HTTP/2 is off, and that timer
     * would still be linked when the context is disposed. */
    w->ctx.shutdown_requested = 1;
    w->deadline = uv_now(&w->loop) + atomic_load(&w->srv->grace_ms);
    uv_timer_start(&w->drain_timer, on_drain_tick, 0, DRAIN_TICK_MS);
out:
    return;
}

static void close_walk_cb(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static void on_watchdog(uv_timer_t *timer)
{
    struct sk_http_worker *w = timer->data;

    sk_warn(w->srv->who, "loop %u: handles still open %d ms after loop_fini; closing them", w->index, LOOP_END_MS);
    uv_walk(&w->loop, close_walk_cb, NULL);
}

/* h2o keeps freed socket buffers in a per-thread free list; give them back before the
 * thread ends, or they are lost with the thread. */
static void drain_h2o_recycle(void)
{
    h2o_mem_recycle_t *r = &h2o_socket_buffer_prototype.allocator;

    while (r->cnt > 0)
        free(h2o_mem_alloc_recycle(r, 0));
}

/* Runs on the worker thread with the loop stopped (or never started). */
static void worker_teardown(struct sk_http_worker *w)
{
    struct sk_http_server *srv = w->srv;
    uv_timer_t watchdog;
    size_t left;
    int rc;

    if (!w->loop_ready)
        goto out;
    if (w->listener_ready && !uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
    if (w->handles_ready) {
        if (!uv_is_closing((uv_handle_t *)&w->drain_timer))
            uv_close((uv_handle_t *)&w->drain_timer, NULL);
        if (!uv_is_closing((uv_handle_t *)&w->stop_async))
            uv_close((uv_handle_t *)&w->stop_async, NULL);
    }
    if (w->fini_due) {
        w->fini_due = 0;
        srv->conf.loop_fini(srv->conf.app, w->index, &w->loop, w->reqs.loop_data);
    }
    if (w->ctx_ready) {
        w->ctx_ready = 0;
        h2o_context_dispose(&w->ctx); /* runs the loop once itself */
    }
    /* The application closes its handles in loop_fini; run until they are closed, and
     * close whatever is left after LOOP_END_MS (the timer is unref'd: it does not keep
     * the loop alive by itself). */
    uv_timer_init(&w->loop, &watchdog);
    watchdog.data = w;
    uv_timer_start(&watchdog, on_watchdog, LOOP_END_MS, 0);
    uv_unref((uv_handle_t *)&watchdog);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (!uv_is_closing((uv_handle_t *)&watchdog))
        uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&w->loop);
    if (rc != 0) {
        sk_err(srv->who, "loop %u: closing the loop: %s; closing what is left", w->index, uv_strerror(rc));
        uv_walk(&w->loop, close_walk_cb, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&w->loop);
    }
    w->loop_ready = 0;
    left = sk_http_reqset_free_all(&w->reqs);
    if (left > 0)
        sk_warn(srv->who, "loop %u: %zu request(s) never answered by their handler; freed", w->index, left);
out:
    if (w->fd != -1) {
        close(w->fd);
        w->fd = -1;
    }
    drain_h2o_recycle();
}

static void report(struct sk_http_worker *w, int status, const char *err)
{
    pthread_mutex_lock(&w->srv->lock);
    w->report = status;
    if (err != NULL)
        snprintf(w->err, sizeof(w->err), "%s", err);
    pthread_cond_broadcast(&w->srv->cond);
    pthread_mutex_unlock(&w->srv->lock);
}

static int worker_setup(struct sk_http_worker *w, char *err)
{
    struct sk_http_server *srv = w->srv;
    char app_err[SK_ERRLEN] = "";
    void *loop_data = NULL;
    int rc, ret = SK_ERR;

    rc = uv_loop_init(&w->loop);
    if (rc != 0) {
        snprintf(err, SK_ERRLEN, "%s listener, loop %u: cannot create an event loop: %s", srv->name, w->index,
                 uv_strerror(rc));
        goto out;
    }
    w->loop_ready = 1;
    h2o_context_init(&w->ctx, &w->loop, &srv->gc);
    w->ctx_ready = 1;
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = srv->gc.hosts;
    w->reqs.listener = srv->name;
    w->reqs.who = srv->who;
    w->reqs.routes = srv->conf.routes;
    w->reqs.app = srv->conf.app;
    w->reqs.loop = &w->loop;
    w->reqs.max_body_bytes = srv->conf.max_body_bytes;

    /* both always succeed on an initialised loop */
    (void)uv_async_init(&w->loop, &w->stop_async, on_stop_async);
    (void)uv_timer_init(&w->loop, &w->drain_timer);
    w->stop_async.data = w;
    w->drain_timer.data = w;
    w->handles_ready = 1;

    if (srv->conf.loop_init != NULL) {
        if (srv->conf.loop_init(srv->conf.app, w->index, &w->loop, &loop_data, app_err) != SK_OK) {
            snprintf(err, SK_ERRLEN, "%s listener, loop %u: %.200s", srv->name, w->index,
                     app_err[0] != '\0' ? app_err : "loop_init failed without saying why");
            goto out;
        }
        w->reqs.loop_data = loop_data;
    }
    w->fini_due = srv->conf.loop_fini != NULL;

    (void)uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    w->listener_ready = 1;
    rc = uv_tcp_open(&w->listener, w->fd);
    if (rc != 0) {
        snprintf(err, SK_ERRLEN, "%s listener, loop %u: cannot use the listening socket: %s", srv->name, w->index,
                 uv_strerror(rc));
        goto out;
    }
    w->fd = -1; /* the handle owns it now */
    rc = uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, on_accept);
    if (rc != 0) {
        snprintf(err, SK_ERRLEN, "%s listener, loop %u: cannot listen: %s", srv->name, w->index, uv_strerror(rc));
        goto out;
    }
    w->phase = PHASE_RUNNING;
    ret = SK_OK;
out:
    return ret;
}

static void *worker_main(void *arg)
{
    struct sk_http_worker *w = arg;
    char err[SK_ERRLEN] = "";
    char tname[16];

    snprintf(tname, sizeof(tname), "http-%s-%u", w->srv->name, w->index);
    (void)pthread_setname_np(pthread_self(), tname); /* only for ps and gdb */
    if (worker_setup(w, err) == SK_OK) {
        report(w, 1, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
    } else {
        w->phase = PHASE_DONE;
        report(w, -1, err);
    }
    worker_teardown(w);
    return NULL;
}

/* --- start and stop -------------------------------------------------------------------- */

static int bind_socket(const struct addrinfo *ai, int reuseport, int *out, char *err, const char *what)
{
    int fd, one = 1, rc = SK_ERR;

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd == -1) {
        snprintf(err, SK_ERRLEN, "cannot listen on %s: socket: %s", what, strerror(errno));
        goto out;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
        snprintf(err, SK_ERRLEN, "cannot listen on %s: setsockopt: %s", what, strerror(errno));
        goto out;
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, SK_ERRLEN, "cannot listen on %s: %s", what, strerror(errno));
        goto out;
    }
    *out = fd;
    fd = -1;
    rc = SK_OK;
out:
    if (fd != -1)
        close(fd);
    return rc;
}

/* One SO_REUSEPORT socket per worker. SO_REUSEPORT would let us join a group that
 * another server of ours already listens with, so first bind once without it: that
 * fails when anybody listens on the address. */
static int open_listeners(struct sk_http_server *srv, char *err)
{
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    char port[8], what[160];
    unsigned i;
    int rc = SK_ERR, probe = -1, gai;

    snprintf(port, sizeof(port), "%u", (unsigned)srv->conf.port);
    snprintf(what, sizeof(what), "%.100s:%u (%.20s listener)", srv->host, (unsigned)srv->conf.port, srv->name);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(srv->host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, SK_ERRLEN, "cannot listen on %s: the address does not resolve: %s", what, gai_strerror(gai));
        goto out;
    }
    if (srv->conf.port != 0) {
        if (bind_socket(ai, 0, &probe, err, what) != SK_OK)
            goto out;
        close(probe);
    }
    for (i = 0; i < srv->n_workers; i++) {
        if (bind_socket(ai, 1, &srv->workers[i].fd, err, what) != SK_OK)
            goto out;
        if (listen(srv->workers[i].fd, LISTEN_BACKLOG) != 0) {
            snprintf(err, SK_ERRLEN, "cannot listen on %s: %s", what, strerror(errno));
            goto out;
        }
        /* port 0: the others join the port the kernel picked for the first */
        if (i == 0 && srv->conf.port == 0) {
            if (getsockname(srv->workers[0].fd, (struct sockaddr *)&bound, &blen) != 0) {
                snprintf(err, SK_ERRLEN, "cannot listen on %s: getsockname: %s", what, strerror(errno));
                goto out;
            }
            memcpy(ai->ai_addr, &bound, ai->ai_addrlen);
        }
    }
    rc = SK_OK;
out:
    if (ai != NULL)
        freeaddrinfo(ai);
    return rc;
}

static void free_server(struct sk_http_server *srv)
{
    unsigned i;

    if (srv->workers != NULL) {
        for (i = 0; i < srv->n_workers; i++)
            if (srv->workers[i].fd != -1)
                close(srv->workers[i].fd);
        free(srv->workers);
    }
    if (srv->gc_ready)
        h2o_config_dispose(&srv->gc);
    sk_http_router_free(srv->router);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->cond);
    free(srv->name);
    free(srv->host);
    free(srv->who);
    free(srv);
}

/* Ask every serving loop to stop and join every thread. */
static void stop_workers(struct sk_http_server *srv, unsigned grace_ms)
{
    unsigned i;

    atomic_store(&srv->grace_ms, grace_ms);
    for (i = 0; i < srv->n_workers; i++)
        if (srv->workers[i].thread_started && srv->workers[i].report == 1)
            uv_async_send(&srv->workers[i].stop_async);
    for (i = 0; i < srv->n_workers; i++)
        if (srv->workers[i].thread_started)
            pthread_join(srv->workers[i].thread, NULL);
}

static int start_workers(struct sk_http_server *srv, char *err)
{
    sigset_t all, old;
    unsigned i;
    int rc = SK_OK, prc;

    /* Workers never take asynchronous signals: SIGPIPE from a write to a peer that
     * went away becomes EPIPE, and SIGTERM & co. are the main thread's business. */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGTRAP);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (i = 0; i < srv->n_workers; i++) {
        prc = pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
        if (prc != 0) {
            snprintf(err, SK_ERRLEN, "%s listener: cannot start thread %u: %s", srv->name, i, strerror(prc));
            rc = SK_ERR;
            break;
        }
        srv->workers[i].thread_started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    pthread_mutex_lock(&srv->lock);
    for (i = 0; i < srv->n_workers; i++) {
        while (srv->workers[i].thread_started && srv->workers[i].report == 0)
            pthread_cond_wait(&srv->cond, &srv->lock);
        if (srv->workers[i].report == -1 && rc == SK_OK) {
            snprintf(err, SK_ERRLEN, "%s", srv->workers[i].err);
            rc = SK_ERR;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}

struct sk_http_server *sk_http_server_start(const struct sk_http_server_conf *conf, char *err)
{
    struct sk_http_server *srv = NULL, *ret = NULL;
    struct sk_http_h2o_handler *handler;
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    char rerr[SK_ERRLEN];
    unsigned i;

    if (conf == NULL || conf->threads < 1 || conf->threads > MAX_THREADS) {
        snprintf(err, SK_ERRLEN, "%s listener: threads must be between 1 and %d",
                 conf != NULL && conf->name != NULL ? conf->name : "http", MAX_THREADS);
        goto out;
    }
    srv = xcalloc(1, sizeof(*srv));
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->cond, NULL);
    srv->conf = *conf;
    srv->name = strdup(conf->name != NULL && conf->name[0] != '\0' ? conf->name : "http");
    srv->host = strdup(conf->host != NULL && conf->host[0] != '\0' ? conf->host : "127.0.0.1");
    srv->who = malloc(strlen(srv->name != NULL ? srv->name : "") + 6);
    if (srv->name == NULL || srv->host == NULL || srv->who == NULL) {
        snprintf(err, SK_ERRLEN, "out of memory starting the HTTP server");
        goto out;
    }
    sprintf(srv->who, "http %s", srv->name);
    srv->conf.name = srv->name;
    srv->conf.host = srv->host;
    if (srv->conf.max_body_bytes == 0)
        srv->conf.max_body_bytes = DEFAULT_MAX_BODY;
    if (srv->conf.idle_timeout_ms == 0)
        srv->conf.idle_timeout_ms = DEFAULT_IDLE_MS;
    if (sk_http_router_new(conf->routes, conf->n_routes, &srv->router, rerr) != SK_OK) {
        snprintf(err, SK_ERRLEN, "%s listener: %.200s", srv->name, rerr);
        goto out;
    }
    srv->n_workers = conf->threads;
    srv->workers = xcalloc(srv->n_workers, sizeof(*srv->workers));
    for (i = 0; i < srv->n_workers; i++) {
        srv->workers[i].srv = srv;
        srv->workers[i].index = i;
        srv->workers[i].fd = -1;
    }
    if (open_listeners(srv, err) != SK_OK)
        goto out;

    h2o_config_init(&srv->gc);
    srv->gc_ready = 1;
    srv->gc.server_name = h2o_iovec_init(H2O_STRLIT("seckill"));
    srv->gc.max_request_entity_size = srv->conf.max_body_bytes + BODY_SLACK;
    srv->gc.http1.req_timeout = srv->conf.idle_timeout_ms;
    srv->gc.http1.upgrade_to_http2 = 0; /* HTTP/1.1 only: no h2c upgrade */
    hostconf = h2o_config_register_host(&srv->gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = (struct sk_http_h2o_handler *)h2o_create_handler(pathconf, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->srv = srv;

    if (start_workers(srv, err) != SK_OK) {
        stop_workers(srv, 0);
        goto out;
    }
    sk_info(srv->who, "listening on %s:%u with %u threads", srv->host, (unsigned)srv->conf.port, srv->n_workers);
    ret = srv;
    srv = NULL;
out:
    if (srv != NULL)
        free_server(srv);
    return ret;
}

void sk_http_server_stop(struct sk_http_server *srv, unsigned grace_ms)
{
    if (srv != NULL) {
        stop_workers(srv, grace_ms);
        sk_info(srv->who, "stopped");
        free_server(srv);
    }
}
