/*
 * seckill-mint-token: mint buyer JWTs (HS256) for the demo, tests and benchmarks.
 *
 *   seckill-mint-token [-c CONFIG | -s SECRET] [-u FIRST_USER] [-n COUNT] [-t TTL_SECONDS]
 *
 * The secret comes from -s, else SECKILL_JWT_SECRET, else the config's
 * auth.jwt_secret. Prints one token per line, for users FIRST..FIRST+COUNT-1.
 */
#include <config.h> /* autoconf */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth/jwt.h"
#include "core/config.h"
#include "core/timeutil.h"

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || *s == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *secret = NULL, *config = NULL;
    unsigned long long first = 1, count = 1, ttl = 3600;
    struct sk_config cfg;
    char err[SK_CONFIG_ERRLEN];
    int c, rc = 1, have_cfg = 0;

    while ((c = getopt(argc, argv, "c:s:u:n:t:h")) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': secret = optarg; break;
        case 'u': if (parse_u64(optarg, &first) != 0 || first == 0) goto usage; break;
        case 'n': if (parse_u64(optarg, &count) != 0 || count == 0) goto usage; break;
        case 't': if (parse_u64(optarg, &ttl) != 0 || ttl == 0) goto usage; break;
        default: goto usage;
        }
    }
    if (optind != argc)
        goto usage;
    if (secret == NULL)
        secret = getenv("SECKILL_JWT_SECRET");
    if (secret == NULL && config != NULL) {
        if (sk_config_load(config, &cfg, err) != 0) {
            fprintf(stderr, "seckill-mint-token: %s\n", err);
            return 1;
        }
        have_cfg = 1;
        secret = cfg.jwt_secret;
    }
    if (secret == NULL || *secret == '\0') {
        fprintf(stderr, "seckill-mint-token: no secret: give -s, SECKILL_JWT_SECRET or -c CONFIG\n");
        goto out;
    }
    int64_t exp = sk_now_ms() / 1000 + (int64_t)ttl;
    char tok[512];
    for (unsigned long long u = first; u < first + count; u++) {
        if (sk_jwt_mint(secret, strlen(secret), u, exp, tok, sizeof(tok)) != 0) {
            fprintf(stderr, "seckill-mint-token: cannot mint a token for user %llu\n", u);
            goto out;
        }
        puts(tok);
    }
    rc = 0;
out:
    if (have_cfg)
        sk_config_free(&cfg);
    return rc;
usage:
    fprintf(stderr, "usage: seckill-mint-token [-c CONFIG | -s SECRET] [-u FIRST_USER] [-n COUNT] [-t TTL_SECONDS]\n");
    return 2;
}
