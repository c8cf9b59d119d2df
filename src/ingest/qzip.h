/*
 * qzip.h: compressed runs of queued logs (queue entry format 3, docs/ingest.md "Queue entry").
 *
 * A queue entry's `m` field holds MessagePack logs back to back. The logs of a request of at least
 * LDG_QZIP_MIN_LOGS logs and LDG_QZIP_MIN bytes are queued as one block instead, when that makes them
 * at least an eighth smaller:
 *
 *   0xc1 (a byte MessagePack never uses, so a block cannot be mistaken for a log), the method (1:
 *   raw deflate, zlib level 1; 2: the LZ77 codec of ingest/lz.h), the logs' size and the
 *   compressed size (each 4 bytes, big-endian), then the compressed logs.
 *
 * An entry may mix blocks and plain logs (the enqueue script concatenates the requests of one
 * project). The storage role inflates a block and reads the logs inside it as it reads plain
 * ones; a block holds logs only, never another block.
 *
 * Pure (zlib only, no globals); thread-safe.
 */
#ifndef LDG_INGEST_QZIP_H
#define LDG_INGEST_QZIP_H

#include "core/buf.h"
#include "core/common.h"

#define LDG_QZIP_MARK 0xc1
#define LDG_QZIP_HEAD 10

enum ldg_qzip_method {
    LDG_QZIP_OFF = 0,
    LDG_QZIP_DEFLATE = 1,
    LDG_QZIP_LZ = 2,
};
/* What ldg_qzip_pack uses (both are read). */
#define LDG_QZIP_DEFAULT LDG_QZIP_LZ
/* What is compressed is mostly what logs repeat from one another (keys, levels, releases, stack
 * frames): a few logs, or a few KiB, gain too little to pay for the CPU (the caller checks the
 * number of logs). */
#define LDG_QZIP_MIN_LOGS 16
#define LDG_QZIP_MIN 4096
/* Largest inflated block accepted (a request body is at most a few MiB). */
#define LDG_QZIP_MAX_RAW (64u << 20)

/* Replace the logs in *mp by one block when they are at least LDG_QZIP_MIN bytes and the block is
 * smaller; true if replaced (scratch then holds the old bytes; buffers swapped). */
bool ldg_qzip_pack(struct ldg_buf *mp, struct ldg_buf *scratch);
/* The same with a given method (OFF: never). */
bool ldg_qzip_pack_with(struct ldg_buf *mp, struct ldg_buf *scratch, enum ldg_qzip_method method);

/* The block at the start of p[0..n): its logs appended to out, its size in *used. 0, or -EINVAL
 * (not a block, truncated, corrupt, too large, or not of its stated size). */
int ldg_qzip_unpack(const char *p, size_t n, struct ldg_buf *out, size_t *used) LDG_MUSTCHECK;

#endif
