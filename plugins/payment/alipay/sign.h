/*
 * RSA2 as Alipay uses it: SHA256withRSA (PKCS#1 v1.5) over UTF-8 text, the
 * signature in base64, with keys read from PEM files. OpenSSL's EVP interface does
 * the work.
 *
 * Internal to the alipay plugin (hidden symbols); the test suite compiles this file
 * in. A loaded key is only read afterwards, so one key may sign and verify on
 * several threads at once.
 */
#ifndef SK_ALIPAY_SIGN_H
#define SK_ALIPAY_SIGN_H

#include <stddef.h>

#include <openssl/evp.h>

/*
 * Read an RSA key of at least 2048 bits from the file `path`: a private key
 * (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY", not encrypted) when
 * want_private, else a public key ("PUBLIC KEY", SubjectPublicKeyInfo), in PEM or
 * as the bare base64 of the DER that Alipay's console shows. SK_OK and *out (the
 * caller frees it with EVP_PKEY_free), or SK_ERR with a sentence that names the
 * file in errbuf (SK_ERRLEN) and *out untouched.
 */
int al_key_read(const char *path, int want_private, EVP_PKEY **out, char *errbuf);

/* Sign len bytes of data with `key` (a private key): SK_OK and *sig_b64, the
 * base64 signature, malloc'd (the caller frees it); SK_ERR with errbuf otherwise. */
int al_sign(EVP_PKEY *key, const char *data, size_t len, char **sig_b64, char *errbuf);

/* Check the base64 signature sig_b64 of len bytes of data with `key` (a public
 * key, or a private key's public half): SK_OK when it verifies, SK_ERR with a
 * sentence (not base64, or does not match) otherwise. */
int al_verify(EVP_PKEY *key, const char *data, size_t len, const char *sig_b64, char *errbuf);

#endif
