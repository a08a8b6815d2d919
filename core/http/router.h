/*
 * The request router: matches a method and a path against the route table of
 * struct sk_http_server_conf. Internal to core/http (server.c, request.c and the
 * tests); the application only writes the table.
 *
 * Patterns are compiled once at start-up; matching allocates nothing, so it can run
 * on every loop thread at once without a lock.
 */
#ifndef SK_HTTP_ROUTER_H
#define SK_HTTP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/http/server.h"

/* Most "{id}" and most "{s}" placeholders one pattern may hold (each). */
#define SK_HTTP_MAX_PARAMS 8

enum sk_http_match_result {
    SK_HTTP_MATCH_OK = 0,          /* method and path matched; `route` is set */
    SK_HTTP_MATCH_NOT_FOUND = 1,   /* no pattern matches the path */
    SK_HTTP_MATCH_BAD_METHOD = 2,  /* a pattern matches the path, not with this method */
};

/* The outcome of one match. Lives on the caller's stack; the offsets of the "{s}"
 * values point into the path the caller passed. */
struct sk_http_match {
    enum sk_http_match_result result;
    size_t route;                         /* index into the route table (OK only) */
    unsigned n_ids, n_strs;
    uint64_t ids[SK_HTTP_MAX_PARAMS];     /* "{id}" values in pattern order */
    size_t str_off[SK_HTTP_MAX_PARAMS];   /* "{s}" values: offset and length in the path */
    size_t str_len[SK_HTTP_MAX_PARAMS];
    char allow[96];                       /* BAD_METHOD: "GET, POST" for the Allow header */
};

struct sk_http_router;

/* Compile `routes` (n entries; the array and its strings must outlive the router).
 * Refuses, with a sentence in err (SK_ERRLEN) that names the route, a pattern that
 * does not start with '/', an unknown placeholder, too many placeholders, an empty
 * or non-uppercase method, a NULL handler, or the same method and pattern twice.
 * On success *out is the caller's, to free with sk_http_router_free; on failure
 * *out is untouched. */
int sk_http_router_new(const struct sk_http_route *routes, size_t n, struct sk_http_router **out, char *err);
void sk_http_router_free(struct sk_http_router *router);

/* Match `method` and `path` (the path without its query string; neither needs a NUL).
 * Routes are tried in table order and the first whose pattern and method match wins,
 * so a literal segment placed before a "{s}" in the table takes precedence. "{id}" is
 * a canonical decimal integer 1..2^63-1 (no sign, no leading zero); "{s}" is any
 * non-empty segment, not percent-decoded. A trailing '/' is significant. HEAD matches
 * GET routes (the server sends the headers only). */
void sk_http_router_match(const struct sk_http_router *router, const char *method, size_t method_len,
                          const char *path, size_t path_len, struct sk_http_match *m);

#endif
