/*
 * The alipay payment plugin (plugins/payment/alipay/).
 *
 * - values, rsa2: the plugin's own code for the string to sign, form encoding,
 *   yuan and China time (params.c) and RSA2 (sign.c), compiled into this suite,
 *   checked against fixed vectors and against the `openssl` command line (which
 *   must produce the very same signature: PKCS#1 v1.5 is deterministic).
 * - config, notify, page: the plugin loaded through the host, no gateway.
 * - gateway: the plugin against scripts/alipay-emulator.py (started here on a
 *   free loopback port with keys generated for the run), plus a port that refuses
 *   and one that never answers. Notifies the emulator posts are received by a
 *   small Python HTTP server and handed to verify_notify.
 *
 * Keys are generated once per run, in main(), with the openssl command line.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <seckill/plugin.h>
#include <uv.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/plugin_host.h"
#include "plugins/payment/alipay/params.h"
#include "plugins/payment/alipay/sign.h"
#include "tests/support.h"

#define APP_ID    "2021000122600001"
#define SELLER_ID "2088102177846880"
#define PYTHON    "/usr/bin/python3"

/* ---- files and commands -------------------------------------------------- */

/* Keys for the whole run (main() makes them): the app's pair, the gateway's pair,
 * another gateway pair (a gateway the plugin does not trust), and keys that the
 * plugin must refuse. */
static struct {
    char dir[64];
    char app_priv[128], app_pub[128];
    char ali_priv[128], ali_pub[128];
    char other_priv[128], other_pub[128];
    char small_priv[128], ec_priv[128], garbage[128];
    char bare_app_priv[128], bare_ali_pub[128]; /* base64 without PEM armour */
} K;

static int sh(const char *fmt, ...) SK_PRINTF(1, 2);

/* Run a shell command line; its exit status, or -1. */
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file as a malloc'd string ("" when missing). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1);
    size_t len = 0;
    char chunk[4096];
    size_t n;

    ck_assert_ptr_nonnull(buf);
    if (f == NULL)
        return buf;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf = realloc(buf, len + n + 1);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf + len, chunk, n);
        len += n;
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

static void make_keys(void)
{
    snprintf(K.dir, sizeof(K.dir), "/tmp/sk-alipay-keys-XXXXXX");
    if (mkdtemp(K.dir) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        exit(EXIT_FAILURE);
    }
#define KEYPATH(field, name) snprintf(K.field, sizeof(K.field), "%s/" name, K.dir)
    KEYPATH(app_priv, "app_private.pem");
    KEYPATH(app_pub, "app_public.pem");
    KEYPATH(ali_priv, "alipay_private.pem");
    KEYPATH(ali_pub, "alipay_public.pem");
    KEYPATH(other_priv, "other_private.pem");
    KEYPATH(other_pub, "other_public.pem");
    KEYPATH(small_priv, "small_private.pem");
    KEYPATH(ec_priv, "ec_private.pem");
    KEYPATH(garbage, "garbage.pem");
    KEYPATH(bare_app_priv, "app_private.b64");
    KEYPATH(bare_ali_pub, "alipay_public.b64");
#undef KEYPATH
    /* The app's key as PKCS#1 ("RSA PRIVATE KEY"), Alipay's as PKCS#8: both forms
     * are in use. */
    int rc = sh("openssl genrsa -traditional -out %s 2048 2>/dev/null && openssl rsa -in %s -pubout -out %s 2>/dev/null"
                " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"
                " && openssl pkey -in %s -pubout -out %s 2>/dev/null"
                " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null"
                " && openssl pkey -in %s -pubout -out %s 2>/dev/null"
                " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out %s 2>/dev/null"
                " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null",
                K.app_priv, K.app_priv, K.app_pub, K.ali_priv, K.ali_priv, K.ali_pub, K.other_priv, K.other_priv,
                K.other_pub, K.small_priv, K.ec_priv);
    /* As Alipay's console shows keys: the base64 on one line. */
    if (rc == 0)
        rc = sh("grep -v -- ----- %s | tr -d '\\n' > %s && grep -v -- ----- %s | tr -d '\\n' > %s", K.app_priv,
                K.bare_app_priv, K.ali_pub, K.bare_ali_pub);
    if (rc != 0) {
        fprintf(stderr, "cannot generate keys with the openssl command line (exit %d)\n", rc);
        exit(EXIT_FAILURE);
    }
    FILE *f = fopen(K.garbage, "w");
    if (f == NULL || fputs("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", f) < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", K.garbage);
        exit(EXIT_FAILURE);
    }
}

static EVP_PKEY *key(const char *path, int priv)
{
    char err[SK_ERRLEN] = "";
    EVP_PKEY *k = NULL;
    ck_assert_msg(al_key_read(path, priv, &k, err) == SK_OK, "%s", err);
    return k;
}

/* ---- values: the string to sign, forms, yuan, China time ----------------- */

static void params_from(struct al_params *p, const char *const (*kv)[2], size_t n)
{
    al_params_init(p);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(al_params_add(p, kv[i][0], kv[i][1]), SK_OK);
}

START_TEST(string_to_sign_known_vector)
{
    static const char *const kv[][2] = {
        {"timestamp", "2026-11-25 10:00:00"},
        {"method", "alipay.trade.query"},
        {"app_id", "2021000122600001"},
        {"sign", "c2lnbg=="},
        {"app_auth_token", ""},
        {"format", "JSON"},
        {"charset", "utf-8"},
        {"sign_type", "RSA2"},
        {"version", "1.0"},
        {"notify_url", "http://127.0.0.1:8080/api/v1/pay/notify/alipay?a=1&b=2"},
        {"biz_content", "{\"out_trade_no\":\"01M898EK3QVQG0MF7Y916AQY3V-12\",\"subject\":\"秒杀 手机\"}"},
    };
    struct al_params p;
    params_from(&p, kv, sizeof(kv) / sizeof(kv[0]));

    char *v1 = al_params_sign_content(&p, 0), *v2 = al_params_sign_content(&p, 1);
    ck_assert_str_eq(v1, "app_id=2021000122600001&biz_content={\"out_trade_no\":\"01M898EK3QVQG0MF7Y916AQY3V-12\","
                         "\"subject\":\"秒杀 手机\"}&charset=utf-8&format=JSON&method=alipay.trade.query"
                         "&notify_url=http://127.0.0.1:8080/api/v1/pay/notify/alipay?a=1&b=2"
                         "&timestamp=2026-11-25 10:00:00&version=1.0");
    ck_assert_str_eq(v2, "app_id=2021000122600001&biz_content={\"out_trade_no\":\"01M898EK3QVQG0MF7Y916AQY3V-12\","
                         "\"subject\":\"秒杀 手机\"}&charset=utf-8&format=JSON&method=alipay.trade.query"
                         "&notify_url=http://127.0.0.1:8080/api/v1/pay/notify/alipay?a=1&b=2"
                         "&sign_type=RSA2&timestamp=2026-11-25 10:00:00&version=1.0");
    free(v1);
    free(v2);
    al_params_free(&p);

    /* Byte order: capitals first, '_' (0x5f) before letters, a prefix first. */
    static const char *const order[][2] = {{"ab", "1"}, {"a_b", "2"}, {"a", "3"}, {"B", "4"}, {"sign", "x"}};
    params_from(&p, order, sizeof(order) / sizeof(order[0]));
    v1 = al_params_sign_content(&p, 0);
    ck_assert_str_eq(v1, "B=4&a=3&a_b=2&ab=1");
    free(v1);
    /* A name appears once. */
    ck_assert_int_eq(al_params_add(&p, "a", "again"), SK_ERR);
    ck_assert_str_eq(al_params_get(&p, "a"), "3");
    al_params_free(&p);

    /* Nothing to sign: "". */
    al_params_init(&p);
    v1 = al_params_sign_content(&p, 1);
    ck_assert_str_eq(v1, "");
    free(v1);
    al_params_free(&p);
}
END_TEST

START_TEST(form_encode_decode)
{
    static const char *const kv[][2] = {
        {"subject", "秒杀 a+b=c&d"},
        {"time", "2026-11-25 10:00:00"},
        {"sign", "ab+/cd=="},
        {"empty", ""},
    };
    struct al_params p, q;
    char err[SK_ERRLEN] = "";
    params_from(&p, kv, sizeof(kv) / sizeof(kv[0]));
    char *form = al_params_encode(&p);
    ck_assert_ptr_nonnull(form);
    /* Every reserved byte is percent-encoded; nothing else separates pairs. */
    ck_assert_str_eq(form, "subject=%E7%A7%92%E6%9D%80%20a%2Bb%3Dc%26d&time=2026-11-25%2010%3A00%3A00"
                           "&sign=ab%2B%2Fcd%3D%3D&empty=");
    ck_assert_int_eq(al_params_decode(form, strlen(form), &q, err), SK_OK);
    ck_assert_uint_eq(q.n, 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(al_params_get(&q, kv[i][0]), kv[i][1]);
    al_params_free(&q);
    free(form);
    al_params_free(&p);

    /* Form encoding: '+' is a space, %2B a plus; empty pairs are skipped. */
    const char *body = "a=x+y&&b=%2B1&c=&d=caf%C3%A9&";
    ck_assert_int_eq(al_params_decode(body, strlen(body), &q, err), SK_OK);
    ck_assert_uint_eq(q.n, 4);
    ck_assert_str_eq(al_params_get(&q, "a"), "x y");
    ck_assert_str_eq(al_params_get(&q, "b"), "+1");
    ck_assert_str_eq(al_params_get(&q, "c"), "");
    ck_assert_str_eq(al_params_get(&q, "d"), "café");
    al_params_free(&q);
}
END_TEST

START_TEST(form_decode_refuses_malformed)
{
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"a=1&novalue&b=2", "is not name=value"},
        {"=1", "is not name=value"},
        {"a=1&a=2", "given twice"},
        {"a=1&b=x%00y", "NUL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct al_params q;
        char err[SK_ERRLEN] = "";
        q.n = 12345; /* must stay as it is */
        ck_assert_int_eq(al_params_decode(bad[i].body, strlen(bad[i].body), &q, err), SK_ERR);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: %s", bad[i].body, err);
        ck_assert_uint_eq(q.n, 12345);
    }
}
END_TEST

START_TEST(yuan_cents_conversions)
{
    static const struct {
        int64_t cents;
        const char *yuan;
    } fmt[] = {{0, "0.00"},
               {1, "0.01"},
               {10, "0.10"},
               {99, "0.99"},
               {100, "1.00"},
               {9900, "99.00"},
               {123456789, "1234567.89"},
               {10000000000LL, "100000000.00"}};
    char buf[AL_YUAN_MAX];
    int64_t c;

    for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
        ck_assert_int_eq(al_yuan_format(fmt[i].cents, buf), SK_OK);
        ck_assert_str_eq(buf, fmt[i].yuan);
        c = -7;
        ck_assert_int_eq(al_yuan_parse(fmt[i].yuan, &c), SK_OK);
        ck_assert_int_eq(c, fmt[i].cents);
    }
    ck_assert_int_eq(al_yuan_format(-1, buf), SK_ERR);

    /* What a gateway might also write: one decimal, none. */
    ck_assert_int_eq(al_yuan_parse("99.9", &c), SK_OK);
    ck_assert_int_eq(c, 9990);
    ck_assert_int_eq(al_yuan_parse("99", &c), SK_OK);
    ck_assert_int_eq(c, 9900);
    ck_assert_int_eq(al_yuan_parse("0.1", &c), SK_OK);
    ck_assert_int_eq(c, 10);
    /* Exactly, where a double would not be: 0.29 * 100 = 28.999999999999996. */
    ck_assert_int_eq(al_yuan_parse("0.29", &c), SK_OK);
    ck_assert_int_eq(c, 29);
    ck_assert_int_eq(al_yuan_parse("999999999999.99", &c), SK_OK);
    ck_assert_int_eq(c, 99999999999999LL);

    static const char *const refused[] = {"1,000.00", "1.001", "-1.00", "+1.00", " 1.00", "1.00 ",
                                          ".5",       "1.",    "",      "1e2",   "0x10",  "01.00",
                                          "00.01",    "1..0",  "abc",   "1.0a",  "１.00", "9999999999999.00",
                                          "NaN"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        c = -7;
        ck_assert_msg(al_yuan_parse(refused[i], &c) == SK_ERR, "\"%s\" was accepted", refused[i]);
        ck_assert_int_eq(c, -7);
    }
}
END_TEST

/* ms of a UTC wall time, by timegm: independent of the code under test. */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

START_TEST(china_time_conversions)
{
    char buf[AL_TIME_MAX];
    int64_t ms;

    ck_assert_int_eq(al_china_time(0, buf), SK_OK);
    ck_assert_str_eq(buf, "1970-01-01 08:00:00");
    /* 22:13:20 UTC is 06:13:20 the next day in Beijing; milliseconds round down. */
    ck_assert_int_eq(al_china_time(1700000000999LL, buf), SK_OK);
    ck_assert_str_eq(buf, "2023-11-15 06:13:20");
    ck_assert_int_eq(al_china_time(utc_ms(2026, 12, 31, 16, 0, 0), buf), SK_OK);
    ck_assert_str_eq(buf, "2027-01-01 00:00:00");
    ck_assert_int_eq(al_china_time(-1, buf), SK_OK);
    ck_assert_str_eq(buf, "1970-01-01 07:59:59");

    ck_assert_int_eq(al_china_time_parse("2026-11-25 10:00:04", &ms), SK_OK);
    ck_assert_int_eq(ms, utc_ms(2026, 11, 25, 2, 0, 4));
    ck_assert_int_eq(al_china_time_parse("2024-02-29 23:59:59", &ms), SK_OK);
    ck_assert_int_eq(ms, utc_ms(2024, 2, 29, 15, 59, 59));

    static const char *const refused[] = {"2023-02-29 10:00:00",
                                          "2026-11-25T10:00:04",
                                          "2026-11-25 10:00:04Z",
                                          "2026-11-25 24:00:00",
                                          "2026-1-25 10:00:04",
                                          "2026-11-25 10:00",
                                          "",
                                          "2026-13-01 00:00:00",
                                          " 2026-11-25 10:00:0"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        ms = -7;
        ck_assert_msg(al_china_time_parse(refused[i], &ms) == SK_ERR, "\"%s\" was accepted", refused[i]);
        ck_assert_int_eq(ms, -7);
    }
}
END_TEST

/* ---- RSA2 against the openssl command line -------------------------------- */

/* The text the tests sign: a real request's string to sign, UTF-8 included. */
static const char SIGNED_TEXT[] =
    "app_id=2021000122600001&biz_content={\"out_trade_no\":\"01M898EK3QVQG0MF7Y916AQY3V-12\",\"total_amount\":"
    "\"99.00\",\"subject\":\"秒杀 手机\"}&charset=utf-8&format=JSON&method=alipay.trade.precreate&sign_type=RSA2"
    "&timestamp=2026-11-25 10:00:00&version=1.0";

START_TEST(plugin_signature_verifies_with_openssl_cli)
{
    char data[256], sigb64[256], sigbin[256], cli[256], err[SK_ERRLEN] = "";
    char *sig = NULL;
    EVP_PKEY *k = key(K.app_priv, 1);

    snprintf(data, sizeof(data), "%s/plugin-data.txt", K.dir);
    snprintf(sigb64, sizeof(sigb64), "%s/plugin-sig.b64", K.dir);
    snprintf(sigbin, sizeof(sigbin), "%s/plugin-sig.bin", K.dir);
    snprintf(cli, sizeof(cli), "%s/cli-sig.b64", K.dir);
    write_file(data, SIGNED_TEXT, strlen(SIGNED_TEXT));
    ck_assert_int_eq(al_sign(k, SIGNED_TEXT, strlen(SIGNED_TEXT), &sig, err), SK_OK);
    ck_assert_uint_eq(strlen(sig), 344); /* 256 bytes in base64, one line */
    write_file(sigb64, sig, strlen(sig));

    ck_assert_int_eq(sh("openssl base64 -d -A -in %s -out %s", sigb64, sigbin), 0);
    ck_assert_int_eq(sh("openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1", K.app_pub, sigbin, data),
                     0);
    /* The command line signs the same text to the same bytes. */
    ck_assert_int_eq(sh("openssl dgst -sha256 -sign %s %s | openssl base64 -A > %s", K.app_priv, data, cli), 0);
    char *theirs = read_file(cli);
    ck_assert_str_eq(theirs, sig);
    free(theirs);
    /* And the check is real: one byte more and it fails. */
    char longer[sizeof(SIGNED_TEXT) + 1];
    snprintf(longer, sizeof(longer), "%s ", SIGNED_TEXT);
    write_file(data, longer, strlen(longer));
    ck_assert_int_ne(sh("openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1", K.app_pub, sigbin, data),
                     0);
    free(sig);
    EVP_PKEY_free(k);
}
END_TEST

START_TEST(openssl_cli_signature_verifies_with_plugin)
{
    char data[256], sigfile[256], err[SK_ERRLEN] = "";
    EVP_PKEY *pub = key(K.ali_pub, 0), *other = key(K.other_pub, 0);

    snprintf(data, sizeof(data), "%s/cli-data.txt", K.dir);
    snprintf(sigfile, sizeof(sigfile), "%s/cli-sig2.b64", K.dir);
    write_file(data, SIGNED_TEXT, strlen(SIGNED_TEXT));
    ck_assert_int_eq(sh("openssl dgst -sha256 -sign %s %s | openssl base64 -A > %s", K.ali_priv, data, sigfile), 0);
    char *sig = read_file(sigfile);
    ck_assert_uint_eq(strlen(sig), 344);

    ck_assert_msg(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err) == SK_OK, "%s", err);
    /* Another text, another key, a damaged or non-base64 signature: refused. */
    ck_assert_int_eq(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT) - 1, sig, err), SK_ERR);
    ck_assert_msg(strstr(err, "does not verify") != NULL, "%s", err);
    ck_assert_int_eq(al_verify(other, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err), SK_ERR);
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err), SK_ERR);
    sig[10] = ' ';
    ck_assert_int_eq(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err), SK_ERR);
    ck_assert_msg(strstr(err, "not base64") != NULL, "%s", err);
    ck_assert_int_eq(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT), "", err), SK_ERR);
    ck_assert_int_eq(al_verify(pub, SIGNED_TEXT, strlen(SIGNED_TEXT), "abc", err), SK_ERR);
    free(sig);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(other);
}
END_TEST

START_TEST(key_files_refused)
{
    static const struct {
        const char *path;
        int priv;
        const char *why;
    } bad[] = {
        {"/nonexistent/key.pem", 1, "cannot read the file"},
        {K.garbage, 1, "not a PEM private key"},
        {K.app_pub, 1, "not a PEM private key"},
        {K.app_priv, 0, "not a PEM public key"},
        {K.bare_ali_pub, 1, "not a PEM private key"},
        {K.bare_app_priv, 0, "nor the base64 of one"},
        {K.dir, 1, "cannot read the file"},
        {K.small_priv, 1, "a 1024-bit RSA key; RSA2 needs 2048 bits"},
        {K.ec_priv, 1, "not an RSA key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EVP_PKEY *k = (EVP_PKEY *)&bad; /* must stay untouched */
        char err[SK_ERRLEN] = "";
        ck_assert_int_eq(al_key_read(bad[i].path, bad[i].priv, &k, err), SK_ERR);
        ck_assert_ptr_eq(k, (EVP_PKEY *)&bad);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: %s", bad[i].path, err);
        ck_assert_msg(strstr(err, bad[i].path) != NULL, "the sentence does not name the file: %s", err);
    }
}
END_TEST

START_TEST(bare_base64_keys)
{
    char err[SK_ERRLEN] = "";
    char *sig = NULL;
    EVP_PKEY *bare_priv = key(K.bare_app_priv, 1), *pem_pub = key(K.app_pub, 0);
    EVP_PKEY *bare_pub = key(K.bare_ali_pub, 0), *pem_priv = key(K.ali_priv, 1);

    /* The same keys as their PEM files: what one signs, the other verifies. */
    ck_assert_int_eq(al_sign(bare_priv, SIGNED_TEXT, strlen(SIGNED_TEXT), &sig, err), SK_OK);
    ck_assert_msg(al_verify(pem_pub, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err) == SK_OK, "%s", err);
    free(sig);
    ck_assert_int_eq(al_sign(pem_priv, SIGNED_TEXT, strlen(SIGNED_TEXT), &sig, err), SK_OK);
    ck_assert_msg(al_verify(bare_pub, SIGNED_TEXT, strlen(SIGNED_TEXT), sig, err) == SK_OK, "%s", err);
    free(sig);
    EVP_PKEY_free(bare_priv);
    EVP_PKEY_free(pem_pub);
    EVP_PKEY_free(bare_pub);
    EVP_PKEY_free(pem_priv);
}
END_TEST

/* ---- the plugin on a loop ------------------------------------------------- */

struct env {
    struct sk_config cfg;
    struct sk_plugin_conf pc;
    struct sk_loaded_plugin p;
    const struct sk_payment_ops *ops;
    uv_loop_t loop;
    uv_timer_t guard;
    int expired;
    void *conn;
};

static const char *plugin_build_dir(void)
{
    const char *v = getenv("SK_PLUGIN_BUILD_DIR");
    return v && *v ? v : SK_TEST_BUILDDIR "/plugins/.libs";
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static int run_until_flag(struct env *e, const int *flag, unsigned timeout_ms)
{
    e->expired = 0;
    uv_timer_start(&e->guard, on_guard, timeout_ms, 0);
    while (!*flag && !e->expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_timer_stop(&e->guard);
    return *flag;
}

/* Load the plugin with `json` as its config: SK_OK, or SK_ERR with the loader's
 * sentence in err. */
static int load(struct env *e, const char *json, char *err)
{
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    snprintf(e->cfg.plugin_dir, sizeof(e->cfg.plugin_dir), "%s", plugin_build_dir());
    e->pc.present = 1;
    snprintf(e->pc.name, sizeof(e->pc.name), "alipay");
    e->pc.config_json = strdup(json);
    ck_assert_ptr_nonnull(e->pc.config_json);
    snprintf(e->pc.where, sizeof(e->pc.where), "check_payment_alipay");
    int rc = sk_plugin_load(&e->cfg, &e->pc, SK_PLUGIN_PAYMENT, &e->p, err);
    if (rc != SK_OK) {
        free(e->pc.config_json);
        e->pc.config_json = NULL;
    }
    return rc;
}

/* The plugin's config with the run's keys and `gateway`; `extra` (JSON members,
 * may be "") adds keys or replaces these. */
static void config(char *out, size_t outlen, const char *gateway, const char *extra)
{
    char more[1024];
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "gateway_url", gateway, "app_id", APP_ID,
                          "app_private_key_file", K.app_priv, "alipay_public_key_file", K.ali_pub, "notify_url",
                          "http://127.0.0.1:9/api/v1/pay/notify/alipay", "timeout_ms", 3000);
    snprintf(more, sizeof(more), "{%s}", extra);
    json_t *x = json_loads(more, 0, NULL);
    ck_assert_msg(o != NULL && x != NULL, "bad test config %s", more);
    ck_assert_int_eq(json_object_update(o, x), 0);
    char *text = json_dumps(o, JSON_COMPACT);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_lt(strlen(text), outlen);
    snprintf(out, outlen, "%s", text);
    free(text);
    json_decref(x);
    json_decref(o);
}

/* Load and attach, on a fresh loop. */
static void up(struct env *e, const char *gateway, const char *extra)
{
    char json[2048], err[SK_ERRLEN] = "";
    config(json, sizeof(json), gateway, extra);
    ck_assert_msg(load(e, json, err) == SK_OK, "%s", err);
    e->ops = sk_plugin_payment_ops(&e->p);
    ck_assert_int_eq(uv_loop_init(&e->loop), 0);
    ck_assert_int_eq(uv_timer_init(&e->loop, &e->guard), 0);
    e->guard.data = &e->expired;
    ck_assert_msg(e->ops->attach(e->p.instance, &e->loop, &e->conn, err) == SK_OK, "%s", err);
    ck_assert_int_eq(e->ops->ready(e->conn), 1);
}

static void down(struct env *e)
{
    e->ops->detach(e->conn);
    uv_close((uv_handle_t *)&e->guard, NULL);
    ck_assert_int_eq(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    ck_assert_msg(uv_loop_close(&e->loop) == 0, "detach left handles open on the loop");
    sk_plugin_unload(&e->p);
    free(e->pc.config_json);
}

static int64_t counter(const char *name)
{
    char full[128];
    snprintf(full, sizeof(full), "seckill_plugin_alipay_%s", name);
    return sk_metric_value(sk_metric_counter(full, "", ""));
}

/* One verb's outcome, copied out of the callback. */
struct res {
    int done, calls, status;
    enum sk_trade_status trade;
    char order_no[64], trade_no[64];
    int64_t amount;
    char *pay_url, *qr_code;
    int refunded;
    char err[SK_ERRLEN];
};

static void on_res(void *arg, int status, const struct sk_pay_result *r, const char *err)
{
    struct res *x = arg;
    x->calls++;
    x->done = 1;
    x->status = status;
    if (status == SK_OK) {
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_null(err);
        x->trade = r->status;
        snprintf(x->order_no, sizeof(x->order_no), "%s", r->order_no);
        snprintf(x->trade_no, sizeof(x->trade_no), "%s", r->trade_no);
        x->amount = r->amount_cents;
        x->pay_url = r->pay_url ? strdup(r->pay_url) : NULL;
        x->qr_code = r->qr_code ? strdup(r->qr_code) : NULL;
        x->refunded = r->refunded;
    } else {
        ck_assert_ptr_null(r);
        ck_assert_ptr_nonnull(err);
        snprintf(x->err, sizeof(x->err), "%s", err);
    }
}

static void res_free(struct res *x)
{
    free(x->pay_url);
    free(x->qr_code);
    x->pay_url = x->qr_code = NULL;
}

/* Start a verb, check that its callback did not run inside the call, run the loop
 * until it has (at most 10 s) and check it ran once. */
#define RUN(e, x, call)                                                                                                \
    do {                                                                                                               \
        memset(&(x), 0, sizeof(x));                                                                                    \
        ck_assert_int_eq((call), SK_OK);                                                                               \
        ck_assert_msg((x).calls == 0, "the callback ran inside the verb call");                                        \
        ck_assert_msg(run_until_flag((e), &(x).done, 10000), "no callback within 10 s");                               \
        ck_assert_int_eq((x).calls, 1);                                                                                \
    } while (0)

#define OK(x) ck_assert_msg((x).status == SK_OK, "verb failed: %s", (x).err)

static struct res create(struct env *e, const char *order_no, int64_t cents, const char *subject, int64_t expires)
{
    struct res x;
    struct sk_pay_trade t = {.order_no = order_no, .amount_cents = cents, .subject = subject, .expires_at_ms = expires};
    RUN(e, x, e->ops->create(e->conn, &t, on_res, &x));
    return x;
}

static int64_t in_15_min(void)
{
    return (int64_t)time(NULL) * 1000 + 15 * 60 * 1000;
}

static struct res query(struct env *e, const char *order_no)
{
    struct res x;
    RUN(e, x, e->ops->query(e->conn, order_no, on_res, &x));
    return x;
}

static struct res close_trade(struct env *e, const char *order_no)
{
    struct res x;
    RUN(e, x, e->ops->close(e->conn, order_no, on_res, &x));
    return x;
}

static struct res refund(struct env *e, const char *order_no, const char *refund_no, int64_t cents)
{
    struct res x;
    RUN(e, x, e->ops->refund(e->conn, order_no, refund_no, cents, "closed before payment", on_res, &x));
    return x;
}

/* ---- config --------------------------------------------------------------- */

START_TEST(config_refused)
{
    char json[2048];
    static const struct {
        const char *extra, *why;
    } bad[] = {
        {"\"colour\":\"red\"", "config key colour: unknown key"},
        {"\"timeout_ms\":\"10\"", "config key timeout_ms: must be an integer"},
        {"\"timeout_ms\":5", "config key timeout_ms: 5 is out of range"},
        {"\"method\":\"wap\"", "config key method: must be \"precreate\""},
        {"\"method\":7", "config key method: must be \"precreate\""},
        {"\"gateway_url\":\"ftp://x/gateway.do\"", "config key gateway_url: \"ftp://x/gateway.do\" is not an http"},
        {"\"notify_url\":\"\"", "config key notify_url: must be 1 to"},
        {"\"seller_id\":\"2088 1\"", "config key seller_id: \"2088 1\" must be letters and digits"},
        {"\"subject_prefix\":[]", "config key subject_prefix: must be a string, not a list"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct env e;
        char err[SK_ERRLEN] = "";
        config(json, sizeof(json), "http://127.0.0.1:9/gateway.do", bad[i].extra);
        ck_assert_int_eq(load(&e, json, err), SK_ERR);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s -> %s", bad[i].extra, err);
    }

    /* Required keys, and key files that cannot be used: the sentence names the file. */
    struct {
        char json[1024];
        const char *why, *names;
    } more[] = {
        {"{\"app_private_key_file\":\"x\"}", "config key app_id: required", NULL},
        {"", "config key app_private_key_file: /nonexistent/app.pem: cannot read the file", "/nonexistent/app.pem"},
        {"", "config key alipay_public_key_file:", NULL},
        {"", "config key app_private_key_file:", NULL},
        {"[1]", "config must be a mapping", NULL},
        {"{\"app_id\":\"1\",", "config is not valid JSON", NULL},
    };
    snprintf(more[1].json, sizeof(more[1].json),
             "{\"app_id\":\"1\",\"app_private_key_file\":\"/nonexistent/app.pem\",\"alipay_public_key_file\":\"%s\","
             "\"notify_url\":\"http://127.0.0.1/n\"}",
             K.ali_pub);
    snprintf(more[2].json, sizeof(more[2].json),
             "{\"app_id\":\"1\",\"app_private_key_file\":\"%s\",\"alipay_public_key_file\":\"%s\","
             "\"notify_url\":\"http://127.0.0.1/n\"}",
             K.app_priv, K.garbage);
    more[2].names = K.garbage;
    snprintf(more[3].json, sizeof(more[3].json),
             "{\"app_id\":\"1\",\"app_private_key_file\":\"%s\",\"alipay_public_key_file\":\"%s\","
             "\"notify_url\":\"http://127.0.0.1/n\"}",
             K.ali_pub, K.ali_pub);
    more[3].names = K.ali_pub;
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        struct env e;
        char err[SK_ERRLEN] = "";
        ck_assert_int_eq(load(&e, more[i].json, err), SK_ERR);
        ck_assert_msg(strstr(err, more[i].why) != NULL, "%s -> %s", more[i].json, err);
        ck_assert_msg(more[i].names == NULL || strstr(err, more[i].names) != NULL, "no file name in: %s", err);
    }
    /* Without notify_url. */
    {
        struct env e;
        char err[SK_ERRLEN] = "";
        snprintf(json, sizeof(json),
                 "{\"app_id\":\"1\",\"app_private_key_file\":\"%s\",\"alipay_public_key_file\":\"%s\"}", K.app_priv,
                 K.ali_pub);
        ck_assert_int_eq(load(&e, json, err), SK_ERR);
        ck_assert_msg(strstr(err, "config key notify_url: required") != NULL, "%s", err);
    }
}
END_TEST

/* ---- notifies ------------------------------------------------------------ */

#define NOTIFY_ORDER "01M898EK3QVQG0MF7Y916AQY3V-12"
#define NOTIFY_TRADE "2026112522001400000000000001"
#define NOTIFY_ID    "ac05099524730693a8b330c45cf72da943"
#define FORM_CT      "application/x-www-form-urlencoded; charset=utf-8"

static const char *const NOTIFY[][2] = {
    {"notify_time", "2026-11-25 10:00:05"},
    {"notify_type", "trade_status_sync"},
    {"notify_id", NOTIFY_ID},
    {"app_id", APP_ID},
    {"charset", "utf-8"},
    {"version", "1.0"},
    {"sign_type", "RSA2"},
    {"trade_no", NOTIFY_TRADE},
    {"out_trade_no", NOTIFY_ORDER},
    {"trade_status", "TRADE_SUCCESS"},
    {"total_amount", "99.00"},
    {"receipt_amount", "99.00"},
    {"buyer_id", "2088102177846881"},
    {"buyer_logon_id", ""},
    {"seller_id", SELLER_ID},
    {"gmt_create", "2026-11-25 10:00:00"},
    {"gmt_payment", "2026-11-25 10:00:04"},
    {"subject", "秒杀 手机 a+b"},
    {"fund_bill_list", "[{\"amount\":\"99.00\",\"fundChannel\":\"ALIPAYACCOUNT\"}]"},
};

enum sign_how { SIGN_PLAIN, SIGN_V2, SIGN_OTHER_KEY };

/*
 * A notify body: NOTIFY with `set` (name, value; value NULL removes it) applied
 * before signing, signed with the gateway's key as `how` says, then `tamper`
 * (name, value) applied after signing. malloc'd.
 */
static char *notify_body(const char *set, const char *set_value, enum sign_how how, const char *tamper,
                         const char *tamper_value)
{
    struct al_params p;
    char err[SK_ERRLEN] = "";
    char *sig = NULL, *content, *body;
    EVP_PKEY *k = key(how == SIGN_OTHER_KEY ? K.other_priv : K.ali_priv, 1);

    al_params_init(&p);
    for (size_t i = 0; i < sizeof(NOTIFY) / sizeof(NOTIFY[0]); i++) {
        const char *v = NOTIFY[i][1];
        if (set != NULL && strcmp(set, NOTIFY[i][0]) == 0) {
            if (set_value == NULL)
                continue;
            v = set_value;
        }
        ck_assert_int_eq(al_params_add(&p, NOTIFY[i][0], v), SK_OK);
    }
    if (set != NULL && set_value != NULL && al_params_get(&p, set) == NULL)
        ck_assert_int_eq(al_params_add(&p, set, set_value), SK_OK);
    content = al_params_sign_content(&p, how == SIGN_V2);
    ck_assert_int_eq(al_sign(k, content, strlen(content), &sig, err), SK_OK);
    ck_assert_int_eq(al_params_add(&p, "sign", sig), SK_OK);
    for (size_t i = 0; tamper != NULL && i < p.n; i++) {
        if (strcmp(p.v[i].name, tamper) == 0) {
            free(p.v[i].value);
            p.v[i].value = strdup(tamper_value);
        }
    }
    body = al_params_encode(&p);
    ck_assert_ptr_nonnull(body);
    free(content);
    free(sig);
    al_params_free(&p);
    EVP_PKEY_free(k);
    return body;
}

/* A loaded plugin for verify_notify (no loop needed). */
static void notify_plugin(struct env *e, const char *extra)
{
    char json[2048], err[SK_ERRLEN] = "";
    config(json, sizeof(json), "http://127.0.0.1:9/gateway.do", extra);
    ck_assert_msg(load(e, json, err) == SK_OK, "%s", err);
    e->ops = sk_plugin_payment_ops(&e->p);
}

static void notify_end(struct env *e)
{
    sk_plugin_unload(&e->p);
    free(e->pc.config_json);
}

/* verify_notify must refuse `body` with a sentence holding `why`, and leave the
 * output as it was. */
static void refused(struct env *e, const char *ct, const char *body, size_t len, const char *why)
{
    struct sk_pay_notify n, before;
    char err[SK_ERRLEN] = "";
    memset(&n, 0x5a, sizeof(n));
    before = n;
    int64_t r0 = counter("notifies_refused_total");
    ck_assert_int_eq(e->ops->verify_notify(e->p.instance, ct, body, len, &n, err), SK_ERR);
    ck_assert_msg(strstr(err, why) != NULL, "expected \"%s\" in: %s", why, err);
    ck_assert_msg(memcmp(&n, &before, sizeof(n)) == 0, "a refused notify changed the output");
    ck_assert_int_eq(counter("notifies_refused_total"), r0 + 1);
}

static void refused_body(struct env *e, char *body, const char *why)
{
    refused(e, FORM_CT, body, strlen(body), why);
    free(body);
}

START_TEST(notify_good)
{
    struct env e;
    struct sk_pay_notify n;
    char err[SK_ERRLEN] = "";
    char *body = notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL);

    notify_plugin(&e, "\"seller_id\":\"" SELLER_ID "\"");
    int64_t ok0 = counter("notifies_total");
    memset(&n, 0, sizeof(n));
    ck_assert_msg(e.ops->verify_notify(e.p.instance, FORM_CT, body, strlen(body), &n, err) == SK_OK, "%s", err);
    ck_assert_str_eq(n.order_no, NOTIFY_ORDER);
    ck_assert_str_eq(n.trade_no, NOTIFY_TRADE);
    ck_assert_str_eq(n.app_id, APP_ID);
    ck_assert_str_eq(n.notify_id, NOTIFY_ID);
    ck_assert_int_eq(n.status, SK_TRADE_PAID);
    ck_assert_int_eq(n.amount_cents, 9900);
    ck_assert_int_eq(n.paid_at_ms, utc_ms(2026, 11, 25, 2, 0, 4));
    ck_assert_int_eq(counter("notifies_total"), ok0 + 1);

    /* The same body with spaces as '+' (how most senders form-encode), and a bare
     * content type: the same notify. */
    for (char *s = strstr(body, "%20"); s != NULL; s = strstr(s, "%20")) {
        s[0] = '+';
        memmove(s + 1, s + 3, strlen(s + 3) + 1);
    }
    ck_assert_ptr_null(strstr(body, "%20"));
    memset(&n, 0, sizeof(n));
    ck_assert_msg(
        e.ops->verify_notify(e.p.instance, "application/x-www-form-urlencoded", body, strlen(body), &n, err) == SK_OK,
        "%s", err);
    ck_assert_int_eq(n.paid_at_ms, utc_ms(2026, 11, 25, 2, 0, 4));
    ck_assert_int_eq(n.amount_cents, 9900);
    free(body);

    /* TRADE_FINISHED is paid too; WAIT_BUYER_PAY and TRADE_CLOSED are not (no time). */
    static const struct {
        const char *status;
        enum sk_trade_status want;
    } st[] = {
        {"TRADE_FINISHED", SK_TRADE_PAID}, {"WAIT_BUYER_PAY", SK_TRADE_WAITING}, {"TRADE_CLOSED", SK_TRADE_CLOSED}};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
        body = notify_body("trade_status", st[i].status, SIGN_PLAIN, NULL, NULL);
        memset(&n, 0, sizeof(n));
        ck_assert_msg(e.ops->verify_notify(e.p.instance, FORM_CT, body, strlen(body), &n, err) == SK_OK, "%s", err);
        ck_assert_int_eq(n.status, st[i].want);
        ck_assert_int_eq(n.paid_at_ms, st[i].want == SK_TRADE_PAID ? utc_ms(2026, 11, 25, 2, 0, 4) : 0);
        free(body);
    }
    notify_end(&e);
}
END_TEST

START_TEST(notify_v2_signature)
{
    struct env e;
    struct sk_pay_notify n;
    char err[SK_ERRLEN] = "";
    char *body = notify_body(NULL, NULL, SIGN_V2, NULL, NULL);

    notify_plugin(&e, "");
    ck_assert_msg(e.ops->verify_notify(e.p.instance, FORM_CT, body, strlen(body), &n, err) == SK_OK, "%s", err);
    ck_assert_str_eq(n.order_no, NOTIFY_ORDER);
    free(body);
    /* Signed with sign_type kept, but sign_type is then left out of the body: the
     * V2 string cannot be rebuilt, so it fails. */
    body = notify_body(NULL, NULL, SIGN_V2, "sign_type", "");
    refused_body(&e, body, "bad signature");
    notify_end(&e);
}
END_TEST

START_TEST(notify_bad_signature)
{
    struct env e;
    notify_plugin(&e, "");
    /* Signed with a key that is not Alipay's. */
    refused_body(&e, notify_body(NULL, NULL, SIGN_OTHER_KEY, NULL, NULL), "bad signature");
    /* A damaged signature, a missing one, one that is not base64. */
    char *body = notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL);
    char *s = strstr(body, "&sign=") + 6;
    s[5] = s[5] == 'A' ? 'B' : 'A';
    refused_body(&e, body, "bad signature");
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, "sign", ""), "not signed");
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, "sign", "!!!!"), "not base64");
    /* A field added after signing. */
    body = notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL);
    char *more = malloc(strlen(body) + 32);
    sprintf(more, "%s&refund_fee=99.00", body);
    free(body);
    refused_body(&e, more, "bad signature");
    /* Another sign_type. */
    refused_body(&e, notify_body("sign_type", "RSA", SIGN_PLAIN, NULL, NULL), "sign_type RSA is not RSA2");
    notify_end(&e);
}
END_TEST

START_TEST(notify_wrong_app_id)
{
    struct env e;
    notify_plugin(&e, "");
    /* Correctly signed by Alipay, for another app. */
    refused_body(&e, notify_body("app_id", "2021000000000099", SIGN_PLAIN, NULL, NULL),
                 "app_id 2021000000000099 is not ours (" APP_ID ")");
    refused_body(&e, notify_body("app_id", NULL, SIGN_PLAIN, NULL, NULL), "no app_id");
    notify_end(&e);

    /* With seller_id configured: another seller, or none, is refused. */
    notify_plugin(&e, "\"seller_id\":\"2088000000000001\"");
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL),
                 "seller_id " SELLER_ID " is not ours (2088000000000001)");
    refused_body(&e, notify_body("seller_id", NULL, SIGN_PLAIN, NULL, NULL), "seller_id (none) is not ours");
    notify_end(&e);
}
END_TEST

START_TEST(notify_missing_field)
{
    static const char *const fields[] = {"out_trade_no", "trade_no", "notify_id", "trade_status", "total_amount"};
    struct env e;
    char why[64];
    notify_plugin(&e, "");
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        snprintf(why, sizeof(why), "no %s", fields[i]);
        refused_body(&e, notify_body(fields[i], NULL, SIGN_PLAIN, NULL, NULL), why);
    }
    refused_body(&e, notify_body("gmt_payment", "2026-11-25 25:00:00", SIGN_PLAIN, NULL, NULL),
                 "gmt_payment \"2026-11-25 25:00:00\" is not a time");
    refused_body(&e, notify_body("trade_status", "TRADE_PENDING", SIGN_PLAIN, NULL, NULL),
                 "unknown trade_status TRADE_PENDING");
    /* An order number longer than the host's struct can carry. */
    char longno[80];
    memset(longno, 'A', 70);
    longno[70] = '\0';
    refused_body(&e, notify_body("out_trade_no", longno, SIGN_PLAIN, NULL, NULL), "out_trade_no");
    notify_end(&e);
}
END_TEST

START_TEST(notify_malformed_amount)
{
    static const char *const amounts[] = {"99.9x", "1,000.00", "-99.00", "99.001", "", " 99.00"};
    struct env e;
    notify_plugin(&e, "");
    for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
        /* Signed as it is: the signature is fine, the amount is not. */
        refused_body(&e, notify_body("total_amount", amounts[i], SIGN_PLAIN, NULL, NULL),
                     amounts[i][0] ? "total_amount \"" : "no total_amount");
    }
    notify_end(&e);
}
END_TEST

START_TEST(notify_tampered_amount)
{
    struct env e;
    notify_plugin(&e, "");
    /* Signed for 99.00, sent as 0.01 (or another trade, status or time). */
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, "total_amount", "0.01"), "bad signature");
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, "out_trade_no", "01M898EK3QVQG0MF7Y916AQY3W-12"),
                 "bad signature");
    refused_body(&e, notify_body("trade_status", "WAIT_BUYER_PAY", SIGN_PLAIN, "trade_status", "TRADE_SUCCESS"),
                 "bad signature");
    refused_body(&e, notify_body(NULL, NULL, SIGN_PLAIN, "gmt_payment", "2026-11-25 10:00:03"), "bad signature");
    notify_end(&e);
}
END_TEST

START_TEST(notify_malformed_body)
{
    struct env e;
    char *body = notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL);
    notify_plugin(&e, "");
    refused(&e, "application/json", body, strlen(body), "content type must be application/x-www-form-urlencoded");
    refused(&e, NULL, body, strlen(body), "not none");
    refused(&e, FORM_CT, body, 0, "the body must be 1 to");
    refused(&e, FORM_CT, "a=1&novalue", 11, "is not name=value");
    /* A parameter twice: which one was signed? */
    char *twice = malloc(strlen(body) + 40);
    sprintf(twice, "%s&total_amount=0.01", body);
    refused(&e, FORM_CT, twice, strlen(twice), "given twice");
    free(twice);
    refused(&e, FORM_CT, "sign=abc&charset=gbk", 20, "charset gbk is not utf-8");
    free(body);
    notify_end(&e);
}
END_TEST

START_TEST(config_minimal_loads)
{
    struct env e;
    char json[1024], err[SK_ERRLEN] = "";
    /* app_id as a number: what YAML makes of `app_id: 2021000122600001`. */
    snprintf(json, sizeof(json),
             "{\"app_id\":" APP_ID ",\"app_private_key_file\":\"%s\",\"alipay_public_key_file\":\"%s\","
             "\"notify_url\":\"https://shop.example.com/api/v1/pay/notify/alipay\",\"seller_id\":null}",
             K.app_priv, K.ali_pub);
    ck_assert_msg(load(&e, json, err) == SK_OK, "%s", err);
    const struct sk_payment_ops *ops = sk_plugin_payment_ops(&e.p);
    ck_assert_str_eq(ops->notify_ok, "success");
    ck_assert_str_eq(ops->notify_fail, "fail");
    ck_assert_str_eq(ops->notify_content_type, "text/plain");
    ck_assert_str_eq(e.p.desc->name, "alipay");
    ck_assert_int_eq(e.p.desc->kind, SK_PLUGIN_PAYMENT);
    /* The app id is the number's digits: a notify for it verifies. */
    char *body = notify_body(NULL, NULL, SIGN_PLAIN, NULL, NULL);
    struct sk_pay_notify n;
    ck_assert_msg(ops->verify_notify(e.p.instance, FORM_CT, body, strlen(body), &n, err) == SK_OK, "%s", err);
    ck_assert_str_eq(n.app_id, APP_ID);
    free(body);
    sk_plugin_unload(&e.p);
    free(e.pc.config_json);
}
END_TEST

/* ---- page.pay: a signed URL, no call ------------------------------------- */

START_TEST(page_url_is_signed)
{
    struct env e;
    struct al_params q;
    char err[SK_ERRLEN] = "";
    int64_t expires = in_15_min();
    char expire_text[AL_TIME_MAX];

    /* The gateway is a closed port: page.pay must not call it. */
    up(&e, "http://127.0.0.1:9/gateway.do",
       "\"method\":\"page\",\"subject_prefix\":\"秒杀 \","
       "\"return_url\":\"http://127.0.0.1:9/paid\"");
    int64_t r0 = counter("requests_total");
    struct res x = create(&e, "01M898EK3QVQG0MF7Y916AQY3V-12", 9900, "手机 & 壳", expires);
    OK(x);
    ck_assert_int_eq(counter("requests_total"), r0);
    ck_assert_int_eq(x.trade, SK_TRADE_WAITING);
    ck_assert_str_eq(x.order_no, "01M898EK3QVQG0MF7Y916AQY3V-12");
    ck_assert_int_eq(x.amount, 9900);
    ck_assert_ptr_null(x.qr_code);
    ck_assert_ptr_nonnull(x.pay_url);
    const char *pre = "http://127.0.0.1:9/gateway.do?";
    ck_assert_msg(strncmp(x.pay_url, pre, strlen(pre)) == 0, "%s", x.pay_url);

    const char *qs = x.pay_url + strlen(pre);
    ck_assert_int_eq(al_params_decode(qs, strlen(qs), &q, err), SK_OK);
    ck_assert_str_eq(al_params_get(&q, "method"), "alipay.trade.page.pay");
    ck_assert_str_eq(al_params_get(&q, "app_id"), APP_ID);
    ck_assert_str_eq(al_params_get(&q, "sign_type"), "RSA2");
    ck_assert_str_eq(al_params_get(&q, "charset"), "utf-8");
    ck_assert_str_eq(al_params_get(&q, "version"), "1.0");
    ck_assert_str_eq(al_params_get(&q, "format"), "JSON");
    ck_assert_str_eq(al_params_get(&q, "notify_url"), "http://127.0.0.1:9/api/v1/pay/notify/alipay");
    ck_assert_str_eq(al_params_get(&q, "return_url"), "http://127.0.0.1:9/paid");
    int64_t ts;
    ck_assert_int_eq(al_china_time_parse(al_params_get(&q, "timestamp"), &ts), SK_OK);
    ck_assert_msg(llabs(ts - (int64_t)time(NULL) * 1000) < 5000, "timestamp %s is not now",
                  al_params_get(&q, "timestamp"));

    json_t *biz = json_loads(al_params_get(&q, "biz_content"), 0, NULL);
    ck_assert_ptr_nonnull(biz);
    ck_assert_str_eq(json_string_value(json_object_get(biz, "out_trade_no")), "01M898EK3QVQG0MF7Y916AQY3V-12");
    ck_assert_str_eq(json_string_value(json_object_get(biz, "total_amount")), "99.00");
    ck_assert_str_eq(json_string_value(json_object_get(biz, "subject")), "秒杀 手机 & 壳");
    ck_assert_str_eq(json_string_value(json_object_get(biz, "product_code")), "FAST_INSTANT_TRADE_PAY");
    ck_assert_int_eq(al_china_time(expires, expire_text), SK_OK);
    ck_assert_str_eq(json_string_value(json_object_get(biz, "time_expire")), expire_text);
    json_decref(biz);

    /* The signature covers every parameter but sign, sign_type included. */
    EVP_PKEY *pub = key(K.app_pub, 0);
    char *content = al_params_sign_content(&q, 1);
    ck_assert_msg(al_verify(pub, content, strlen(content), al_params_get(&q, "sign"), err) == SK_OK, "%s", err);
    free(content);
    EVP_PKEY_free(pub);
    al_params_free(&q);
    res_free(&x);
    down(&e);
}
END_TEST

START_TEST(bad_input_reported_through_callback)
{
    struct env e;
    struct res x;
    up(&e, "http://127.0.0.1:9/gateway.do", "");
    int64_t r0 = counter("requests_total");

    x = create(&e, "", 100, "x", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "order number must be 1 to 63") != NULL, "%s", x.err);
    x = create(&e, "A1", 0, "x", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "amount 0 cents is out of range") != NULL, "%s", x.err);
    x = create(&e, "A1", 100, "x", (int64_t)time(NULL) * 1000 - 1000);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "not in the future") != NULL, "%s", x.err);
    x = create(&e, "A1", 100, "", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "no subject") != NULL, "%s", x.err);
    x = create(&e, "A1", 100, "\xff\xfe", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "not valid UTF-8") != NULL, "%s", x.err);
    x = query(&e, "has space");
    ck_assert_int_eq(x.status, SK_ERR);
    x = close_trade(&e, NULL);
    ck_assert_int_eq(x.status, SK_ERR);
    x = refund(&e, "A1", "", 100);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "refund number") != NULL, "%s", x.err);
    x = refund(&e, "A1", "R1", -5);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "refund amount -5 cents is out of range") != NULL, "%s", x.err);
    /* Nothing reached the network. */
    ck_assert_int_eq(counter("requests_total"), r0);
    down(&e);
}
END_TEST

/* ---- the emulator --------------------------------------------------------- */

struct proc {
    pid_t pid;
    char dir[64];
    char log[128];
    int port;
    char url[96]; /* the gateway, http://127.0.0.1:P/gateway.do */
    char base[64];
};

/* Fork and exec argv with stdout and stderr into `log`; the child dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void proc_stop(struct proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        for (int i = 0; i < 100; i++) {
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                p->pid = 0;
                break;
            }
            sk_test_sleep_ms(20);
        }
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
    }
    rm_tree(p->dir);
}

/* Wait (at most 15 s) for "…listening on 127.0.0.1:PORT" in the log. */
static void wait_listening(struct proc *p, const char *what)
{
    for (int i = 0; i < 750 && p->port == 0; i++) {
        char *log = read_file(p->log);
        const char *s = strstr(log, "listening on 127.0.0.1:");
        if (s != NULL && strchr(s, '\n') != NULL)
            p->port = atoi(s + strlen("listening on 127.0.0.1:"));
        int st;
        if (p->port == 0 && waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            ck_abort_msg("%s exited at start:\n%s", what, log);
        }
        free(log);
        if (p->port == 0)
            sk_test_sleep_ms(20);
    }
    ck_assert_msg(p->port > 0, "%s did not start within 15 s", what);
    snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
    snprintf(p->url, sizeof(p->url), "%s/gateway.do", p->base);
}

/* The emulator, signing with `alipay_priv`. */
static void emu_start(struct proc *m, const char *alipay_priv)
{
    char script[512], data[128];
    memset(m, 0, sizeof(*m));
    snprintf(m->dir, sizeof(m->dir), "/tmp/sk-alipay-emu-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(m->dir));
    snprintf(m->log, sizeof(m->log), "%s/emulator.log", m->dir);
    snprintf(data, sizeof(data), "%s/data", m->dir);
    snprintf(script, sizeof(script), "%s/scripts/alipay-emulator.py", SK_TEST_SRCDIR);
    char *argv[] = {PYTHON,
                    script,
                    "--port",
                    "0",
                    "--data",
                    data,
                    "--app-id",
                    APP_ID,
                    "--app-public-key",
                    K.app_pub,
                    "--alipay-private-key",
                    (char *)alipay_priv,
                    "--notify-retry-ms",
                    "200",
                    "--seller-id",
                    SELLER_ID,
                    NULL};
    m->pid = spawn(argv, m->log);
    wait_listening(m, "the alipay emulator");
}

/* A notify receiver: answers `success` and appends "content-type\nbody\n" to a
 * file for each POST. Python's http.server, so that no HTTP is hand-parsed here. */
static const char RECEIVER[] =
    "import sys, http.server\n"
    "out = sys.argv[1]\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_POST(self):\n"
    "        b = self.rfile.read(int(self.headers.get('Content-Length') or 0))\n"
    "        with open(out, 'ab') as f:\n"
    "            f.write(self.headers.get('Content-Type', '').encode() + b'\\n' + b + b'\\n')\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Type', 'text/plain')\n"
    "        self.send_header('Content-Length', '7')\n"
    "        self.end_headers()\n"
    "        self.wfile.write(b'success')\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
    "print('listening on 127.0.0.1:%d' % s.server_address[1], flush=True)\n"
    "s.serve_forever()\n";

static void receiver_start(struct proc *r, char *got, size_t gotlen)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->dir, sizeof(r->dir), "/tmp/sk-alipay-rcv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    snprintf(r->log, sizeof(r->log), "%s/receiver.log", r->dir);
    snprintf(got, gotlen, "%s/notifies.txt", r->dir);
    char *argv[] = {PYTHON, "-c", (char *)RECEIVER, got, NULL};
    r->pid = spawn(argv, r->log);
    wait_listening(r, "the notify receiver");
}

/* The first notify received for order_no with trade_status `status` (at most 10 s):
 * its content type and body into ct/body (malloc'd). */
static void wait_notify(const char *file, const char *order_no, const char *status, char **ct, char **body)
{
    char want_order[128], want_status[64];
    snprintf(want_order, sizeof(want_order), "out_trade_no=%s&", order_no);
    snprintf(want_status, sizeof(want_status), "trade_status=%s&", status);
    *ct = *body = NULL;
    for (int i = 0; i < 500 && *body == NULL; i++) {
        char *all = read_file(file), *save = NULL;
        char *line = strtok_r(all, "\n", &save), *prev = NULL;
        while (line != NULL && *body == NULL) {
            if (prev != NULL && strstr(line, want_order) != NULL && strstr(line, want_status) != NULL) {
                *ct = strdup(prev);
                *body = strdup(line);
            }
            prev = line;
            line = strtok_r(NULL, "\n", &save);
        }
        free(all);
        if (*body == NULL)
            sk_test_sleep_ms(20);
    }
    ck_assert_msg(*body != NULL, "no %s notify for %s within 10 s", status, order_no);
}

/* POST a test control of the emulator (form body); the answer's JSON. */
static json_t *control(const struct proc *m, const char *what, const char *form, long want_status)
{
    char url[256];
    struct sk_test_resp r;
    snprintf(url, sizeof(url), "%s/emulator/%s", m->base, what);
    long st = sk_test_http("POST", url, NULL, form, NULL, &r);
    ck_assert_msg(st == want_status, "POST /emulator/%s %s: %ld %s", what, form, st, r.body ? r.body : "");
    json_t *j = r.json != NULL ? json_incref(r.json) : NULL;
    sk_test_resp_free(&r);
    return j;
}

static void pay(const struct proc *m, const char *order_no)
{
    char form[128];
    snprintf(form, sizeof(form), "out_trade_no=%s", order_no);
    json_decref(control(m, "pay", form, 200));
}

static void scan(const struct proc *m, const char *order_no)
{
    char form[128];
    snprintf(form, sizeof(form), "out_trade_no=%s", order_no);
    json_decref(control(m, "scan", form, 200));
}

/* A fresh order number per case, so that cases never share a trade. */
static void order_no(char *out, size_t len, const char *tag)
{
    static unsigned n;
    snprintf(out, len, "T%ld%d%s-%u", (long)time(NULL), (int)getpid(), tag, ++n);
}

START_TEST(precreate_query_pay_close)
{
    struct proc m, rcv;
    struct env e;
    struct res x;
    char no[64], extra[512], got[256], err[SK_ERRLEN] = "";

    emu_start(&m, K.ali_priv);
    receiver_start(&rcv, got, sizeof(got));
    snprintf(extra, sizeof(extra), "\"notify_url\":\"%s/api/v1/pay/notify/alipay\",\"seller_id\":\"" SELLER_ID "\"",
             rcv.base);
    up(&e, m.url, extra);
    order_no(no, sizeof(no), "a");

    x = create(&e, no, 9900, "秒杀 手机", in_15_min());
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_WAITING);
    ck_assert_str_eq(x.order_no, no);
    ck_assert_int_eq(x.amount, 9900);
    ck_assert_ptr_null(x.pay_url);
    ck_assert_msg(x.qr_code != NULL && strncmp(x.qr_code, "https://qr.alipay.com/", 22) == 0, "qr_code %s",
                  x.qr_code ? x.qr_code : "(null)");
    /* The same trade again: the same QR code (the gateway allows it). */
    struct res again = create(&e, no, 9900, "秒杀 手机", in_15_min());
    OK(again);
    ck_assert_str_eq(again.qr_code, x.qr_code);
    res_free(&again);
    res_free(&x);

    /* Not scanned yet: the gateway has no such trade. */
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_NOT_FOUND);
    ck_assert_int_eq(x.amount, -1);
    scan(&m, no);
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_WAITING);
    ck_assert_int_eq(x.amount, 9900);
    ck_assert_str_ne(x.trade_no, "");
    char trade_no[64];
    snprintf(trade_no, sizeof(trade_no), "%s", x.trade_no);

    pay(&m, no);
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_PAID);
    ck_assert_int_eq(x.amount, 9900);
    ck_assert_str_eq(x.trade_no, trade_no);

    /* A paid trade is not closed, and close says it was paid. */
    x = close_trade(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_PAID);
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_PAID);

    /* The emulator's notify, received over HTTP, verifies with the plugin. */
    char *ct, *body;
    struct sk_pay_notify n;
    wait_notify(got, no, "TRADE_SUCCESS", &ct, &body);
    ck_assert_msg(e.ops->verify_notify(e.p.instance, ct, body, strlen(body), &n, err) == SK_OK, "%s: %s", err, body);
    ck_assert_str_eq(n.order_no, no);
    ck_assert_str_eq(n.trade_no, trade_no);
    ck_assert_str_eq(n.app_id, APP_ID);
    ck_assert_int_eq(n.status, SK_TRADE_PAID);
    ck_assert_int_eq(n.amount_cents, 9900);
    ck_assert_msg(llabs(n.paid_at_ms - (int64_t)time(NULL) * 1000) < 30000, "paid at %lld", (long long)n.paid_at_ms);
    ck_assert_str_ne(n.notify_id, "");
    free(ct);
    free(body);

    down(&e);
    proc_stop(&rcv);
    proc_stop(&m);
}
END_TEST

START_TEST(close_unpaid)
{
    struct proc m;
    struct env e;
    struct res x;
    char no[64], none[64];

    emu_start(&m, K.ali_priv);
    up(&e, m.url, "");
    order_no(no, sizeof(no), "c");
    order_no(none, sizeof(none), "n");

    /* A trade the gateway does not have: nothing to close. */
    x = close_trade(&e, none);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_NOT_FOUND);

    x = create(&e, no, 1, "one cent", in_15_min());
    OK(x);
    res_free(&x);
    scan(&m, no);
    x = close_trade(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_CLOSED);
    ck_assert_str_ne(x.trade_no, "");
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_CLOSED);
    /* Closing again: the gateway refuses (ACQ.TRADE_STATUS_ERROR), and the plugin
     * finds out it is closed, not paid. */
    x = close_trade(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_CLOSED);
    /* And the buyer can no longer pay it. */
    char form[128];
    snprintf(form, sizeof(form), "out_trade_no=%s", no);
    json_decref(control(&m, "pay", form, 409));

    down(&e);
    proc_stop(&m);
}
END_TEST

START_TEST(refund_twice_same_refund_no)
{
    struct proc m;
    struct env e;
    struct res x;
    char no[64], rno[80];

    emu_start(&m, K.ali_priv);
    up(&e, m.url, "");
    order_no(no, sizeof(no), "r");
    snprintf(rno, sizeof(rno), "%s-refund", no);
    x = create(&e, no, 9900, "refund me", in_15_min());
    OK(x);
    res_free(&x);

    /* Not paid: the gateway refuses, with its words. */
    scan(&m, no);
    x = refund(&e, no, rno, 9900);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "alipay alipay.trade.refund: 40004 Business Failed ACQ.TRADE_STATUS_ERROR") == x.err,
                  "%s", x.err);

    pay(&m, no);
    x = refund(&e, no, rno, 9900);
    OK(x);
    ck_assert_int_eq(x.refunded, 1);
    ck_assert_str_ne(x.trade_no, "");
    x = refund(&e, no, rno, 9900);
    OK(x);
    ck_assert_int_eq(x.refunded, 0);
    /* Refunded in full: the trade is closed. */
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_CLOSED);

    down(&e);
    proc_stop(&m);
}
END_TEST

START_TEST(page_url_accepted_by_emulator)
{
    struct proc m;
    struct env e;
    struct res x;
    struct sk_test_resp r;
    char no[64], url[256];

    emu_start(&m, K.ali_priv);
    up(&e, m.url, "\"method\":\"page\"");
    order_no(no, sizeof(no), "p");
    x = create(&e, no, 12345, "页面支付", in_15_min());
    OK(x);
    /* The buyer's browser opens the URL: the gateway checks the signature and shows
     * its cashier page for the trade. */
    ck_assert_int_eq(sk_test_http("GET", x.pay_url, NULL, NULL, NULL, &r), 200);
    ck_assert_msg(strstr(r.body, no) != NULL && strstr(r.body, "123.45") != NULL && strstr(r.body, "sub_code") == NULL,
                  "%s", r.body);
    sk_test_resp_free(&r);
    snprintf(url, sizeof(url), "%s/emulator/trades/%s", m.base, no);
    ck_assert_int_eq(sk_test_http("GET", url, NULL, NULL, NULL, &r), 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "total_amount")), "123.45");
    sk_test_resp_free(&r);
    res_free(&x);

    pay(&m, no);
    x = query(&e, no);
    OK(x);
    ck_assert_int_eq(x.trade, SK_TRADE_PAID);
    ck_assert_int_eq(x.amount, 12345);
    down(&e);
    proc_stop(&m);
}
END_TEST

START_TEST(answer_with_bad_signature)
{
    struct proc m;
    struct env e;
    struct res x;
    char no[64];

    /* The emulator signs with a key that is not the one the plugin trusts. */
    emu_start(&m, K.other_priv);
    up(&e, m.url, "");
    order_no(no, sizeof(no), "s");
    x = create(&e, no, 100, "x", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "alipay alipay.trade.precreate: the answer's signature does not verify") == x.err, "%s",
                  x.err);
    /* Signed business errors are not believed either: NOT_EXIST is not NOT_FOUND. */
    x = query(&e, no);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "signature does not verify") != NULL, "%s", x.err);
    x = close_trade(&e, no);
    ck_assert_int_eq(x.status, SK_ERR);
    down(&e);
    proc_stop(&m);
}
END_TEST

START_TEST(gateway_errors)
{
    struct proc m;
    struct env e;
    struct res x;
    char no[64], extra[512];

    emu_start(&m, K.ali_priv);
    /* The app signs with a key the gateway does not know for it. */
    snprintf(extra, sizeof(extra), "\"app_private_key_file\":\"%s\"", K.other_priv);
    up(&e, m.url, extra);
    order_no(no, sizeof(no), "e");
    int64_t e0 = counter("errors_total");
    x = create(&e, no, 100, "x", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "alipay alipay.trade.precreate: 40002 Invalid Arguments isv.invalid-signature") ==
                      x.err,
                  "%s", x.err);
    ck_assert_int_eq(counter("errors_total"), e0 + 1);
    down(&e);

    /* Another app id: the gateway cannot tell who calls and answers unsigned; that
     * is reported, never read as a trade status. */
    up(&e, m.url, "\"app_id\":\"2021000000000099\"");
    x = query(&e, no);
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "isv.invalid-app-id") != NULL && strstr(x.err, "(unsigned answer)") != NULL, "%s",
                  x.err);
    down(&e);
    proc_stop(&m);
}
END_TEST

START_TEST(gateway_down_fails_fast)
{
    struct env e;
    struct res x;
    int port = sk_test_free_port(); /* nothing listens there */
    char url[96];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/gateway.do", port);
    up(&e, url, "");
    uint64_t t0 = uv_hrtime();
    x = create(&e, "A1", 100, "x", in_15_min());
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "alipay alipay.trade.precreate: no answer from") == x.err, "%s", x.err);
    x = query(&e, "A1");
    ck_assert_int_eq(x.status, SK_ERR);
    x = close_trade(&e, "A1");
    ck_assert_int_eq(x.status, SK_ERR);
    x = refund(&e, "A1", "R1", 100);
    ck_assert_int_eq(x.status, SK_ERR);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_msg(ms < 2000, "four refused calls took %llu ms", (unsigned long long)ms);
    ck_assert_int_eq(e.ops->ready(e.conn), 1);
    down(&e);
}
END_TEST

/* A listener that accepts into its backlog and never answers. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t len = sizeof(a);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(gateway_silent_times_out)
{
    struct env e;
    struct res x;
    int port, fd = silent_listener(&port);
    char url[96];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/gateway.do", port);
    up(&e, url, "\"timeout_ms\":300");
    uint64_t t0 = uv_hrtime();
    x = query(&e, "A1");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_int_eq(x.status, SK_ERR);
    ck_assert_msg(strstr(x.err, "no answer within 300 ms") != NULL, "%s", x.err);
    ck_assert_msg(ms >= 250 && ms < 1500, "timed out after %llu ms", (unsigned long long)ms);
    down(&e);
    close(fd);
}
END_TEST

static void detach_in_callback(void *arg, int status, const struct sk_pay_result *r, const char *err)
{
    struct env *e = arg;
    (void)status;
    (void)r;
    (void)err;
    e->ops->detach(e->conn);
    e->conn = NULL;
}

START_TEST(detach_fails_in_flight)
{
    struct env e;
    struct res a, b;
    int port, fd = silent_listener(&port);
    char url[96];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/gateway.do", port);
    up(&e, url, "");
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    ck_assert_int_eq(e.ops->query(e.conn, "A1", on_res, &a), SK_OK);
    ck_assert_int_eq(e.ops->refund(e.conn, "A1", "R1", 100, NULL, on_res, &b), SK_OK);
    sk_test_sleep_ms(1);
    uv_run(&e.loop, UV_RUN_NOWAIT); /* the requests are on their way */
    e.ops->detach(e.conn);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(a.status, SK_ERR);
    ck_assert_msg(strstr(a.err, "connection was closed") != NULL, "%s", a.err);
    ck_assert_int_eq(b.status, SK_ERR);
    uv_close((uv_handle_t *)&e.guard, NULL);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);

    /* Detach from inside a callback, with another verb queued behind it. */
    sk_plugin_unload(&e.p);
    free(e.pc.config_json);
    up(&e, url, "");
    memset(&b, 0, sizeof(b));
    struct sk_pay_trade t = {.order_no = "", .amount_cents = 1, .subject = "x", .expires_at_ms = in_15_min()};
    ck_assert_int_eq(e.ops->create(e.conn, &t, detach_in_callback, &e), SK_OK); /* fails at once: bad number */
    ck_assert_int_eq(e.ops->query(e.conn, "A1", on_res, &b), SK_OK);
    uv_close((uv_handle_t *)&e.guard, NULL);
    ck_assert_int_eq(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    ck_assert_ptr_null(e.conn);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_int_eq(b.status, SK_ERR);
    ck_assert_int_eq(uv_loop_close(&e.loop), 0);
    sk_plugin_unload(&e.p);
    free(e.pc.config_json);
    close(fd);
}
END_TEST

static void count_done(void *arg, int status, const struct sk_pay_result *r, const char *err)
{
    int *n = arg;
    ck_assert_msg(status == SK_OK, "%s", err ? err : "");
    ck_assert_int_eq(r->status, SK_TRADE_NOT_FOUND);
    (*n)++;
}

START_TEST(many_in_flight)
{
    struct proc m;
    struct env e;
    int done = 0, all = 0;
    char no[64];

    emu_start(&m, K.ali_priv);
    up(&e, m.url, "");
    for (int i = 0; i < 30; i++) {
        order_no(no, sizeof(no), "m");
        ck_assert_int_eq(e.ops->query(e.conn, no, count_done, &done), SK_OK);
    }
    e.expired = 0;
    uv_timer_start(&e.guard, on_guard, 15000, 0);
    while (done < 30 && !e.expired)
        uv_run(&e.loop, UV_RUN_ONCE);
    uv_timer_stop(&e.guard);
    all = done;
    ck_assert_int_eq(all, 30);
    down(&e);
    proc_stop(&m);
}
END_TEST

int main(void)
{
    make_keys();
    Suite *s = suite_create("payment_alipay");
    TCase *values = tcase_create("values");
    tcase_add_test(values, string_to_sign_known_vector);
    tcase_add_test(values, form_encode_decode);
    tcase_add_test(values, form_decode_refuses_malformed);
    tcase_add_test(values, yuan_cents_conversions);
    tcase_add_test(values, china_time_conversions);
    suite_add_tcase(s, values);
    TCase *rsa2 = tcase_create("rsa2");
    tcase_set_timeout(rsa2, 30);
    tcase_add_test(rsa2, plugin_signature_verifies_with_openssl_cli);
    tcase_add_test(rsa2, openssl_cli_signature_verifies_with_plugin);
    tcase_add_test(rsa2, key_files_refused);
    tcase_add_test(rsa2, bare_base64_keys);
    suite_add_tcase(s, rsa2);
    TCase *conf = tcase_create("config");
    tcase_add_test(conf, config_refused);
    tcase_add_test(conf, config_minimal_loads);
    suite_add_tcase(s, conf);
    TCase *notify = tcase_create("notify");
    tcase_set_timeout(notify, 30);
    tcase_add_test(notify, notify_good);
    tcase_add_test(notify, notify_v2_signature);
    tcase_add_test(notify, notify_bad_signature);
    tcase_add_test(notify, notify_wrong_app_id);
    tcase_add_test(notify, notify_missing_field);
    tcase_add_test(notify, notify_malformed_amount);
    tcase_add_test(notify, notify_tampered_amount);
    tcase_add_test(notify, notify_malformed_body);
    suite_add_tcase(s, notify);
    TCase *page = tcase_create("no_gateway");
    tcase_add_test(page, page_url_is_signed);
    tcase_add_test(page, bad_input_reported_through_callback);
    tcase_add_test(page, gateway_down_fails_fast);
    tcase_add_test(page, gateway_silent_times_out);
    tcase_add_test(page, detach_fails_in_flight);
    suite_add_tcase(s, page);
    TCase *gw = tcase_create("emulator");
    tcase_set_timeout(gw, 60);
    tcase_add_test(gw, precreate_query_pay_close);
    tcase_add_test(gw, close_unpaid);
    tcase_add_test(gw, refund_twice_same_refund_no);
    tcase_add_test(gw, page_url_accepted_by_emulator);
    tcase_add_test(gw, answer_with_bad_signature);
    tcase_add_test(gw, gateway_errors);
    tcase_add_test(gw, many_in_flight);
    suite_add_tcase(s, gw);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rm_tree(K.dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
