/*
 * lz.h: a small, fast LZ77 byte codec for queued logs (ingest/qzip.h): LZ4's block layout (a token
 * of literal and match lengths, the literals, a 2-byte offset into the last 64 KiB), greedy matching
 * over a hash of 4-byte prefixes. Compression runs at hundreds of MB/s, several times zlib's
 * fastest level, for a somewhat larger output; decompression checks every length and offset
 * against both buffers, so a corrupt input is an error, never an overrun.
 *
 * Pure (no globals: the hash table is the caller's); thread-safe.
 */
#ifndef LDG_INGEST_LZ_H
#define LDG_INGEST_LZ_H

#include "core/common.h"

#define LDG_LZ_HASH_LOG 14
#define LDG_LZ_TABLE (1u << LDG_LZ_HASH_LOG) /* entries of the caller's uint32_t table */

/* Worst-case output size for n input bytes. */
static inline size_t ldg_lz_bound(size_t n)
{
    return n + n / 255 + 16;
}

/* Compress in[0..n) into out (at least ldg_lz_bound(n) bytes); table: LDG_LZ_TABLE entries, any
 * content. Returns the output size. */
size_t ldg_lz_compress(const unsigned char *in, size_t n, unsigned char *out, uint32_t *table);

/* Decompress in[0..n) into exactly cap bytes of out: 0, or -EINVAL (corrupt, or another size). */
int ldg_lz_decompress(const unsigned char *in, size_t n, unsigned char *out, size_t cap) LDG_MUSTCHECK;

#endif
