/* seckill-console: the operator console of seckilld, over its admin API. */
#include "config.h"

#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "settings.h"
#include "ui.h"

int main(int argc, char **argv)
{
    struct sk_con_settings settings;
    struct sk_con_app app;
    char err[SK_CON_MSGLEN + 600];

    /* ncursesw draws multibyte text in the locale's encoding: titles are UTF-8, so
     * run in a UTF-8 locale even when the environment names none. */
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");

    switch (sk_con_settings_resolve(&settings, argc, argv, getenv("SECKILL_ADMIN_TOKEN"), getenv("NO_COLOR"),
                                    getenv("HOME"), getenv("XDG_CONFIG_HOME"), err, sizeof(err))) {
    case SK_CON_SETTINGS_HELP:
        fputs(sk_con_settings_usage, stdout);
        return 0;
    case SK_CON_SETTINGS_VERSION:
        printf("seckill-console %s\n", PACKAGE_VERSION);
        return 0;
    case SK_CON_SETTINGS_ERROR:
        fprintf(stderr, "seckill-console: %s\n", err);
        return 2;
    default:
        break;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "seckill-console: needs a terminal (run it in one, or under tmux)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (sk_con_app_init(&app, &settings, err, sizeof(err)) != SK_OK) {
        fprintf(stderr, "seckill-console: %s\n", err);
        return 1;
    }
    sk_con_ui_start(settings.monochrome);
    sk_con_app_run(&app);
    sk_con_ui_stop();
    sk_con_app_free(&app);
    return 0;
}
