/* ULID order numbers; see order_no.h. */
#include "order_no.h"

#include <errno.h>
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

int sk_order_no_new(int64_t now_ms, char *out)
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
    for (int c = 0; c < SK_ORDER_NO_LEN; c++) {
        unsigned v = 0;
        for (int k = 0; k < 5; k++, bit++) {
            v <<= 1;
            if (bit >= 0)
                v |= (b[bit / 8] >> (7 - bit % 8)) & 1u;
        }
        out[c] = crockford[v];
    }
    out[SK_ORDER_NO_LEN] = '\0';
    return SK_OK;
}

int sk_order_no_valid(const char *s, size_t len)
{
    if (len != SK_ORDER_NO_LEN || s[0] > '7')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (memchr(crockford, s[i], 32) == NULL)
            return 0;
    return 1;
}
