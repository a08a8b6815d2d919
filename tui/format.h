/*
 * Text helpers of the console: money, durations, countdowns, times, rates, and
 * UTF-8 text measured and cut in terminal columns (Chinese titles are two columns
 * a character). No terminal here: the Check suite tests all of it.
 *
 * Every function writes into a caller-owned buffer and never writes past `len`
 * bytes; the result is always NUL-terminated when len > 0. UTF-8 is decoded in the
 * C.UTF-8 locale whatever the process locale is, so widths do not depend on LANG.
 */
#ifndef SK_CON_FORMAT_H
#define SK_CON_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any text below but fitted strings. */
#define SK_CON_FMT_LEN 48

/* "¥999.00" from 99900; "-¥1.50" for -150. Returns buf. */
char *sk_con_fmt_money(int64_t cents, char *buf, size_t len);
/* Parse what an operator types for money: "999", "999.5", "999.50", "¥999.00",
 * surrounding blanks allowed. No sign, at most two decimals, at most 10^11 cents.
 * SK_OK and *out_cents, or SK_ERR with *out_cents untouched. */
int sk_con_parse_money(const char *text, int64_t *out_cents);

/* A duration, largest units first and zero-padded after the first: "45s",
 * "2m03s", "1h02m03s", "3d04h05m" (days drop the seconds). Negative durations are
 * shown by their size. Returns buf. */
char *sk_con_fmt_duration(int64_t ms, char *buf, size_t len);
/* Time to `target_ms` seen at `now_ms`: "in 1h02m03s", "now" (within a second),
 * "2m03s ago". Returns buf. */
char *sk_con_fmt_countdown(int64_t target_ms, int64_t now_ms, char *buf, size_t len);

enum sk_con_time_style {
    SK_CON_TIME_FULL,  /* "2026-11-25 10:00:00Z" */
    SK_CON_TIME_SHORT, /* "11-25 10:00:00" (UTC, for narrow columns) */
    SK_CON_TIME_FIELD  /* "2026-11-25 10:00:00" what a form field shows and accepts */
};
/* A wall-clock time (ms since the epoch) in UTC; "-" when ms < 0 (absent). */
char *sk_con_fmt_time(int64_t ms, enum sk_con_time_style style, char *buf, size_t len);
/* Parse what an operator types for a time: "now"; "+90s", "+10m", "+1h30m", "+2d"
 * (from now_ms); RFC 3339 ("2026-11-25T10:00:00Z", "…+08:00"); or
 * "2026-11-25 10:00[:SS]" read as UTC. SK_OK and *out_ms, or SK_ERR, untouched. */
int sk_con_parse_time_input(const char *text, int64_t now_ms, int64_t *out_ms);

/* "0/s", "12/s", "3.4/s", "1.2k/s". Returns buf. */
char *sk_con_fmt_rate(double per_s, char *buf, size_t len);

/* Columns that `s` takes on a terminal: wide (CJK) characters count two, combining
 * marks none; bytes that are not valid UTF-8 and control characters count one (they
 * are drawn as '?'). NULL counts 0. */
int sk_con_str_width(const char *s);
/* Copy `s` into out, cut to at most `width` columns without splitting a character;
 * a cut string ends in "…". Invalid bytes and control characters become '?'. When
 * `pad` is set the rest up to `width` is filled with spaces. Returns the columns
 * written. out needs about 4 bytes per column; if it is shorter the copy stops at
 * a character boundary. */
int sk_con_str_fit(const char *s, int width, int pad, char *out, size_t outlen);

/* As sk_con_str_fit, but right-aligned in `width` columns (blanks first), for
 * numbers and money in table columns ("¥" is one column but two bytes, so printf's
 * "%11s" would not line up). */
int sk_con_str_right(const char *s, int width, char *out, size_t outlen);

/* Is s[0..n) whole valid UTF-8 characters, none of them a control character? */
int sk_con_utf8_printable(const char *s, size_t n);

/* Split a stock bar of `width` cells for an item: cells[0] paid, cells[1] reserved
 * but unpaid, cells[2] remaining; they add up to width. Any non-zero part gets at
 * least one cell and a part short of the whole never fills the bar, so a single
 * reservation and the last unit both show. Values are clamped to 0..initial. */
void sk_con_stock_bar(int64_t initial, int64_t reserved, int64_t paid, int width, int cells[3]);

#endif
