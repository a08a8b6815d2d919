/*
 * say(): a sentence into a caller's error buffer of SK_ERRLEN bytes (the plugin
 * ABI's size), printf-style; a long value cuts off the tail. Every plugin source
 * that writes error sentences uses this one. Internal to the plugins.
 */
#ifndef SK_PLUGIN_SAY_H
#define SK_PLUGIN_SAY_H

#include <stdarg.h>
#include <stdio.h>

#include <seckill/plugin.h>

static inline void say(char *buf, const char *fmt, ...) SK_PRINTF(2, 3);

static inline void say(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, SK_ERRLEN, fmt, ap);
    va_end(ap);
}

#endif
