/*
 * SHA256withRSA with OpenSSL's EVP interface, base64 with EVP_EncodeBlock and
 * EVP_DecodeBlock. OpenSSL keeps its errors in a per-thread queue; every failure
 * path here clears it, so that a stale entry never shows up in someone else's
 * error report on the same thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <seckill/plugin.h>

#include "sign.h"

#define MIN_BITS     2048
#define SIG_B64_MAX  1400  /* a 8192-bit signature is 1368 characters */
#define KEY_FILE_MAX 16384 /* an 8192-bit private key in PEM is about 6.5 KiB */

/* A passphrase callback that refuses: without it OpenSSL would prompt on the
 * terminal for an encrypted key, from inside the daemon. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* The bare base64 of a DER key, as Alipay's console and key tool show keys (one
 * line, no PEM armour): the key, or NULL. */
static EVP_PKEY *bare_base64_key(const char *text, size_t len, int want_private)
{
    unsigned char *b64 = OPENSSL_malloc(len + 1), *der = OPENSSL_malloc(len + 1);
    const unsigned char *p;
    EVP_PKEY *key = NULL;
    size_t n = 0, pad = 0;
    int dlen;

    if (b64 == NULL || der == NULL)
        goto out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '='))
            goto out;
        pad = c == '=' ? pad + 1 : 0;
        b64[n++] = c;
    }
    if (n == 0 || n % 4 != 0 || pad > 2)
        goto out;
    dlen = EVP_DecodeBlock(der, b64, (int)n);
    if (dlen <= 0)
        goto out;
    p = der;
    key = want_private ? d2i_AutoPrivateKey(NULL, &p, dlen - (long)pad) : d2i_PUBKEY(NULL, &p, dlen - (long)pad);
out:
    OPENSSL_clear_free(b64, len + 1); /* key material */
    OPENSSL_clear_free(der, len + 1);
    return key;
}

int al_key_read(const char *path, int want_private, EVP_PKEY **out, char *errbuf)
{
    FILE *f = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    char text[KEY_FILE_MAX + 1];
    size_t len = 0;
    int rc = SK_ERR;

    errno = 0;
    f = fopen(path, "rb");
    if (f != NULL) {
        len = fread(text, 1, sizeof(text), f);
        if (ferror(f))
            len = 0;
    }
    if (f == NULL || ferror(f)) {
        snprintf(errbuf, SK_ERRLEN, "%s: cannot read the file: %s", path, strerror(errno ? errno : EIO));
        goto out;
    }
    if (len > KEY_FILE_MAX) {
        snprintf(errbuf, SK_ERRLEN, "%s: longer than %d bytes: not a key file", path, KEY_FILE_MAX);
        goto out;
    }
    text[len] = '\0';
    bio = BIO_new_mem_buf(text, (int)len);
    if (bio == NULL) {
        snprintf(errbuf, SK_ERRLEN, "%s: out of memory", path);
        goto out;
    }
    key = want_private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                       : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    if (key == NULL && strstr(text, "-----BEGIN") == NULL)
        key = bare_base64_key(text, len, want_private);
    if (key == NULL) {
        snprintf(errbuf, SK_ERRLEN, "%s: not a %s", path,
                 want_private ? "PEM private key (\"PRIVATE KEY\" or \"RSA PRIVATE KEY\", not encrypted), nor the "
                                "base64 of one"
                              : "PEM public key (\"-----BEGIN PUBLIC KEY-----\"), nor the base64 of one");
        goto out;
    }
    if (!EVP_PKEY_is_a(key, "RSA")) {
        snprintf(errbuf, SK_ERRLEN, "%s: not an RSA key (RSA2 signs with RSA)", path);
        goto out;
    }
    if (EVP_PKEY_get_bits(key) < MIN_BITS) {
        snprintf(errbuf, SK_ERRLEN, "%s: a %d-bit RSA key; RSA2 needs %d bits or more", path, EVP_PKEY_get_bits(key),
                 MIN_BITS);
        goto out;
    }
    *out = key;
    key = NULL;
    rc = SK_OK;
out:
    ERR_clear_error(); /* also what a PEM attempt left before the base64 one */
    EVP_PKEY_free(key);
    BIO_free(bio);
    if (f != NULL)
        fclose(f);
    OPENSSL_cleanse(text, sizeof(text)); /* a private key's text does not stay on the stack */
    return rc;
}

int al_sign(EVP_PKEY *key, const char *data, size_t len, char **sig_b64, char *errbuf)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    char *b64 = NULL;
    size_t siglen = 0;
    int rc = SK_ERR;

    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data, len) != 1) {
        snprintf(errbuf, SK_ERRLEN, "cannot sign with the app's private key");
        goto out;
    }
    sig = malloc(siglen);
    if (sig == NULL || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, len) != 1) {
        snprintf(errbuf, SK_ERRLEN, "cannot sign with the app's private key");
        goto out;
    }
    b64 = malloc(4 * ((siglen + 2) / 3) + 1);
    if (b64 == NULL) {
        snprintf(errbuf, SK_ERRLEN, "out of memory");
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
    *sig_b64 = b64;
    b64 = NULL;
    rc = SK_OK;
out:
    if (rc != SK_OK)
        ERR_clear_error();
    free(b64);
    free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}

/* Strict base64: only the alphabet, a length that is a multiple of 4, at most two
 * '=' and only at the end. EVP_DecodeBlock alone would skip blanks and read the
 * padding as zero bytes. Returns the decoded length, or -1. */
static int b64_decode(const char *s, unsigned char *out)
{
    size_t n = strlen(s), pad = 0;

    if (n == 0 || n % 4 != 0 || n > SIG_B64_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=' && i >= n - 2)
            pad++;
        else if (!alpha || pad > 0)
            return -1;
    }
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0)
        return -1;
    return len - (int)pad;
}

int al_verify(EVP_PKEY *key, const char *data, size_t len, const char *sig_b64, char *errbuf)
{
    unsigned char sig[SIG_B64_MAX];
    EVP_MD_CTX *md = NULL;
    int siglen, rc = SK_ERR;

    siglen = b64_decode(sig_b64, sig);
    if (siglen <= 0) {
        snprintf(errbuf, SK_ERRLEN, "the signature is not base64");
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1) {
        snprintf(errbuf, SK_ERRLEN, "cannot set up the signature check");
        goto out;
    }
    if (EVP_DigestVerify(md, sig, (size_t)siglen, (const unsigned char *)data, len) != 1) {
        snprintf(errbuf, SK_ERRLEN, "the signature does not verify with the key");
        goto out;
    }
    rc = SK_OK;
out:
    if (rc != SK_OK)
        ERR_clear_error();
    EVP_MD_CTX_free(md);
    return rc;
}
