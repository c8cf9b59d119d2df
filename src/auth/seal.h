/*
 * seal.h: small secrets encrypted at rest with AES-256-GCM (a random 96-bit nonce per seal, the
 * 128-bit tag checked on open). The sealed form is text: "v1." + base64url(nonce | ciphertext |
 * tag). `aad` binds a sealed value to its owner (for example an account id), so a value copied
 * to another row does not open.
 *
 * Pure functions over caller buffers; safe on any thread.
 */
#ifndef LDG_AUTH_SEAL_H
#define LDG_AUTH_SEAL_H

#include <stddef.h>

#include "core/common.h"

#define LDG_SEAL_KEY_BYTES 32
#define LDG_SEAL_MAX_PLAIN 256
/* Text capacity for up to LDG_SEAL_MAX_PLAIN bytes. */
#define LDG_SEAL_TEXT_MAX (3 + ((12 + LDG_SEAL_MAX_PLAIN + 16) * 4 + 2) / 3 + 1)

/* Seal n bytes (n <= LDG_SEAL_MAX_PLAIN) into out (cap >= LDG_SEAL_TEXT_MAX). 0 or -EINVAL/-EIO. */
int ldg_seal(const unsigned char key[LDG_SEAL_KEY_BYTES], const void *plain, size_t n, const char *aad,
             char *out, size_t cap) LDG_MUSTCHECK;

/* Open sealed text into out (cap bytes). Returns the plaintext length, or -EINVAL when the text is
 * malformed, the key or aad differ, or it was tampered with. */
int ldg_seal_open(const unsigned char key[LDG_SEAL_KEY_BYTES], const char *text, const char *aad,
                  unsigned char *out, size_t cap) LDG_MUSTCHECK;

#endif
