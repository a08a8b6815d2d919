/*
 * Where the console finds the daemon: a small YAML file, the environment and flags.
 *
 *     # ~/.config/seckill/console.yaml
 *     admin_url: http://127.0.0.1:8081
 *     token: demo-admin-token-change-me-0123456789
 *     timeout_ms: 5000        # optional, per request (100..60000)
 *     monochrome: false       # optional, no colours even on a colour terminal
 *
 * Later sources win: built-in defaults, the file (-c FILE, else
 * $XDG_CONFIG_HOME/seckill/console.yaml or ~/.config/seckill/console.yaml when it
 * exists), SECKILL_ADMIN_TOKEN, then the flags --url, --token, --timeout-ms, --mono.
 * NO_COLOR in the environment also turns colours off.
 */
#ifndef SK_CON_SETTINGS_H
#define SK_CON_SETTINGS_H

#include <stddef.h>

#define SK_CON_DEFAULT_URL "http://127.0.0.1:8081"

struct sk_con_settings {
    char admin_url[512];
    char token[512];
    long timeout_ms; /* per request, 100..60000 (5000) */
    int monochrome;  /* 1: never use colours */
    char file[512];  /* the file that was read, "" for none */
};

/* Defaults: SK_CON_DEFAULT_URL, no token, 5000 ms, colours on. */
void sk_con_settings_defaults(struct sk_con_settings *s);

/* Apply YAML text (`name` stands for the file in messages) over *s. Unknown keys,
 * wrong types and bad values are errors: SK_ERR with "name:line: key: problem" in
 * err and *s untouched. */
int sk_con_settings_apply_yaml(struct sk_con_settings *s, const char *name, const char *text, size_t len, char *err,
                               size_t errlen);
/* The same from a file. */
int sk_con_settings_apply_file(struct sk_con_settings *s, const char *path, char *err, size_t errlen);

enum sk_con_settings_result {
    SK_CON_SETTINGS_RUN,     /* settings complete: start the console */
    SK_CON_SETTINGS_HELP,    /* --help: print sk_con_settings_usage, exit 0 */
    SK_CON_SETTINGS_VERSION, /* --version */
    SK_CON_SETTINGS_ERROR    /* err says what; exit 2 */
};

/* Everything in order: defaults, file, environment (env_token = getenv
 * ("SECKILL_ADMIN_TOKEN"), env_no_color = getenv("NO_COLOR"), home and xdg for the
 * default file; each may be NULL), then the flags in argv. A missing token is an
 * error, so is a URL that is not http:// or https://. */
enum sk_con_settings_result sk_con_settings_resolve(struct sk_con_settings *s, int argc, char **argv,
                                                    const char *env_token, const char *env_no_color, const char *home,
                                                    const char *xdg, char *err, size_t errlen);

/* The --help text. */
extern const char sk_con_settings_usage[];

#endif
