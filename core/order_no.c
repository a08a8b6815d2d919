/* ULID order numbers; see order_no.h. */
#include "order_no.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <seckill/plugin.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define POOL_SIZE 4096
static _Thread_local unsigned char pool[POOL_SIZE];
static _Thread_local size_t pool_left;

static int random_bytes(unsigned char *out, size_t n)
{
    if (pool_left < n) {
        size_t got = 0;
        while (got < POOL_SIZE) {
            ssize_t r = getrandom(pool + got, POOL_SIZE - got, 0);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return SK_ERR;
            }
            got += (size_t)r;
        }
        pool_left = POOL_SIZE;
    }
    memcpy(out, pool + POOL_SIZE - pool_left, n);
    /* used bytes are wiped so that a later read of the pool learns nothing */
    memset(pool + POOL_SIZE - pool_left, 0, n);
    pool_left -= n;
    return SK_OK;
}

int sk_order_no_new(int64_t now_ms, uint64_t item_id, char *out)
{
    unsigned char b[16];
    uint64_t t = (uint64_t)now_ms;
    for (int i = 5; i >= 0; i--) {
        b[i] = (unsigned char)(t & 0xff);
        t >>= 8;
    }
    if (random_bytes(b + 6, 10) != SK_OK)
        return SK_ERR;
    /* 128 bits → 26 base32 digits, the first carrying only 3 bits */
    int bit = -2; /* 130 bits of output, the top 2 are zero */
    for (int c = 0; c < SK_ULID_LEN; c++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++, bit++) {
            v <<= 1;
            if (bit >= 0)
                v |= (b[bit / 8] >> (7 - bit % 8)) & 1u;
        }
        out[c] = crockford[v];
    }
    snprintf(out + SK_ULID_LEN, SK_ORDER_NO_MAX + 1 - SK_ULID_LEN, "_%llu", (unsigned long long)item_id);
    return SK_OK;
}

int sk_order_no_parse(const char *s, size_t len, uint64_t *item_id)
{
    uint64_t id = 0;
    if (len < SK_ULID_LEN + 2 || len > SK_ORDER_NO_MAX || s[0] > '7' || s[SK_ULID_LEN] != '_')
        return SK_ERR;
    for (size_t i = 0; i < SK_ULID_LEN; i++)
        if (s[i] == '\0' || memchr(crockford, s[i], 32) == NULL)
            return SK_ERR;
    for (size_t i = SK_ULID_LEN + 1; i < len; i++) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (s[i] < '0' || s[i] > '9' || id > UINT64_MAX / 10 || (id == UINT64_MAX / 10 && digit > UINT64_MAX % 10))
            return SK_ERR;
        id = id * 10 + digit;
    }
    if (id == 0)
        return SK_ERR;
    *item_id = id;
    return SK_OK;
}
