/* Logging to stderr with levels; thread-safe (one write(2) per line). */
#ifndef SK_LOG_H
#define SK_LOG_H

#include <stdarg.h>

#include <seckill/plugin.h>

/* Set the most verbose level that is printed (default SK_LOG_INFO). */
void sk_log_set_level(enum sk_log_level level);
enum sk_log_level sk_log_get_level(void);
/* Parse "error", "warn", "info", "debug"; SK_ERR on anything else. */
int sk_log_parse_level(const char *name, enum sk_log_level *out);

/* Write "2026-11-25T10:00:00.123Z LEVEL [who] message\n" when level is enabled.
 * `who` names the subsystem ("http", "plugin redis", …); may be NULL. */
void sk_log(enum sk_log_level level, const char *who, const char *fmt, ...) SK_PRINTF(3, 4);
void sk_logv(enum sk_log_level level, const char *who, const char *fmt, va_list ap);

#define sk_err(who, ...) sk_log(SK_LOG_ERROR, who, __VA_ARGS__)
#define sk_warn(who, ...) sk_log(SK_LOG_WARN, who, __VA_ARGS__)
#define sk_info(who, ...) sk_log(SK_LOG_INFO, who, __VA_ARGS__)
#define sk_debug(who, ...) sk_log(SK_LOG_DEBUG, who, __VA_ARGS__)

#endif
