/*
 * seal.c: AES-256-GCM sealing of small secrets (auth/seal.h).
 */
#include "auth/seal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "auth/apikey.h"

#define NONCE 12
#define TAG 16
#define PREFIX "v1."

int ldg_seal(const unsigned char key[LDG_SEAL_KEY_BYTES], const void *plain, size_t n, const char *aad,
             char *out, size_t cap)
{
    unsigned char raw[NONCE + LDG_SEAL_MAX_PLAIN + TAG];
    if (n > LDG_SEAL_MAX_PLAIN || cap < sizeof PREFIX + LDG_B64URL_LEN(NONCE + n + TAG))
        return -EINVAL;
    if (RAND_bytes(raw, NONCE) != 1)
        return -EIO;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = ctx != NULL;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1;
    if (ok && aad && *aad)
        ok = EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_EncryptUpdate(ctx, raw + NONCE, &len, plain, (int)n) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, raw + NONCE + len, &len) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, raw + NONCE + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok)
        return -EIO;
    memcpy(out, PREFIX, sizeof PREFIX - 1);
    ldg_base64url_encode(raw, NONCE + n + TAG, out + sizeof PREFIX - 1);
    return 0;
}

int ldg_seal_open(const unsigned char key[LDG_SEAL_KEY_BYTES], const char *text, const char *aad,
                  unsigned char *out, size_t cap)
{
    unsigned char raw[NONCE + LDG_SEAL_MAX_PLAIN + TAG];
    size_t rawlen = 0;
    if (!text || strncmp(text, PREFIX, sizeof PREFIX - 1) != 0)
        return -EINVAL;
    const char *b = text + sizeof PREFIX - 1;
    if (ldg_base64url_decode(b, strlen(b), raw, sizeof raw, &rawlen) < 0 || rawlen < NONCE + TAG)
        return -EINVAL;
    size_t n = rawlen - NONCE - TAG;
    if (n > cap)
        return -EINVAL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, ok = ctx != NULL;
    ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) == 1;
    if (ok && aad && *aad)
        ok = EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1;
    ok = ok && EVP_DecryptUpdate(ctx, out, &len, raw + NONCE, (int)n) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, raw + NONCE + n) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, out + len, &len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        memset(out, 0, n);
        return -EINVAL;
    }
    return (int)n;
}
