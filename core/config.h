/*
 * The daemon's configuration, read from one YAML file.
 *
 * Every problem is reported as "file:line: key: what is wrong" (line of the key, or
 * of the document for a missing key); unknown keys, wrong types and missing
 * required keys are errors. See config/seckilld.yaml for the commented example.
 */
#ifndef SK_CONFIG_H
#define SK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <seckill/plugin.h>

#define SK_CONFIG_ERRLEN 512

struct sk_listen {
    char host[64];   /* numeric IPv4/IPv6 address or "localhost" */
    uint16_t port;
};

/* One `plugins.<kind>` entry. */
struct sk_plugin_conf {
    int present;            /* 0 when the kind is not configured */
    char name[64];          /* `name:` e.g. "redis" */
    char path[512];         /* `path:` the .so; "" = <plugin_dir>/<kind>_<name>.so */
    char *config_json;      /* `config:` mapping as JSON text ("{}" if absent); owned */
    char where[600];        /* "file:line" of the entry, for plugin errors */
};

struct sk_config {
    char path[512];                 /* the file it was read from */
    enum sk_log_level log_level;    /* log_level: error|warn|info|debug (info) */
    unsigned workers;               /* workers: 1..64 (default: number of CPUs) */

    struct sk_listen client;        /* listen.client "host:port" (127.0.0.1:8080) */
    struct sk_listen admin;         /* listen.admin  "host:port" (127.0.0.1:8081) */

    /* http: */
    size_t max_body_bytes;          /* http.max_body_bytes (16384); larger bodies get 413 */
    unsigned idle_timeout_ms;       /* http.idle_timeout_ms (10000): slow or idle clients */
    unsigned max_connections;       /* http.max_connections per worker (20000) */

    /* mariadb: (all required but password, which may be "") */
    struct {
        char host[128];
        uint16_t port;
        char user[64];
        char password[128];
        char database[64];
        unsigned pool_size;         /* mariadb.pool_size (4) */
    } mariadb;

    /* auth: secrets; SECKILL_JWT_SECRET / SECKILL_ADMIN_TOKEN override them */
    char jwt_secret[256];           /* auth.jwt_secret, >= 16 bytes */
    char admin_token[256];          /* auth.admin_token, >= 16 bytes */

    int64_t order_timeout_ms;       /* order_timeout: "15m", "90s", "2h" or seconds (15m) */
    unsigned scheduler_tick_ms;     /* scheduler.tick_ms (250) */

    char plugin_dir[512];           /* plugin_dir (compiled-in SK_PLUGIN_DIR) */
    struct sk_plugin_conf stock;    /* plugins.stock (required) */
    struct sk_plugin_conf queue;    /* plugins.queue (optional until the pipeline lands) */
    struct sk_plugin_conf payment;  /* plugins.payment (optional until payment lands) */
};

/* Read and validate `path`, then apply the environment overrides. On failure return
 * SK_ERR with "file:line: key: problem" in err (SK_CONFIG_ERRLEN bytes) and leave
 * *cfg zeroed. On success the caller owns *cfg and frees it with sk_config_free. */
int sk_config_load(const char *path, struct sk_config *cfg, char *err);
/* Same, from text in memory; `name` stands for the file in messages. */
int sk_config_load_string(const char *name, const char *text, size_t len, struct sk_config *cfg, char *err);
void sk_config_free(struct sk_config *cfg);

#endif
