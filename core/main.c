/* seckilld: the flash-sale daemon. See README.md and docs/. */
#include <config.h> /* autoconf: PACKAGE_VERSION */

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: seckilld -c FILE [--check-config]\n"
                 "  -c, --config FILE   the YAML config (see config/seckilld.yaml)\n"
                 "      --check-config  validate the config and exit (0 when valid)\n"
                 "  -V, --version       print the version\n"
                 "  -h, --help          this text\n"
                 "Environment: SECKILL_JWT_SECRET and SECKILL_ADMIN_TOKEN override the secrets.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check_only = 0, c, rc = EXIT_FAILURE;
    char err[SK_CONFIG_ERRLEN];
    struct sk_daemon d;

    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': check_only = 1; break;
        case 'V': printf("seckilld %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, SK_PLUGIN_ABI_MAJOR, SK_PLUGIN_ABI_MINOR); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    memset(&d, 0, sizeof(d));
    if (sk_config_load(path, &d.cfg, err) != SK_OK) {
        fprintf(stderr, "seckilld: %s\n", err);
        return 2;
    }
    if (check_only) {
        printf("%s: configuration OK\n", path);
        sk_config_free(&d.cfg);
        return 0;
    }
    sk_log_set_level(d.cfg.log_level);

    /* Every thread inherits this mask; only the main thread takes the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char serr[SK_ERRLEN];
    if (sk_daemon_start(&d, serr) != SK_OK) {
        sk_err("daemon", "cannot start: %s", serr);
        goto out;
    }
    sk_info("daemon", "seckilld %s ready", PACKAGE_VERSION);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    sk_info("daemon", "%s received: stopping gracefully", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = EXIT_SUCCESS;
out:
    sk_daemon_stop(&d);
    if (rc == EXIT_SUCCESS)
        sk_info("daemon", "stopped");
    return rc;
}
