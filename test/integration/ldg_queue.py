"""Reading the ingest queue in tests: stream entries carry fields p (project), n (logs) and m (the n
logs' MessagePack items back to back: format 2 arrays, or format 1 maps from older entries), some
of them in compressed blocks (format 3: 0xc1, the method (1 raw deflate, 2 LZ77), the logs' size and
the compressed size as 4-byte big-endian numbers, then the compressed logs; docs/ingest.md "Queue
entry"). A
minimal MessagePack walker splits m without a msgpack module (Debian's python3 has none installed
here)."""
import zlib

BLOCK = 0xC1

def _skip(b, i):
    """Index just past the MessagePack item starting at b[i]."""
    c = b[i]
    i += 1
    if c <= 0x7F or c >= 0xE0 or c in (0xC0, 0xC2, 0xC3):
        return i
    if 0xA0 <= c <= 0xBF:
        return i + (c & 0x1F)
    if 0x80 <= c <= 0x9F:
        n = (c & 0x0F) * (2 if c <= 0x8F else 1)
        for _ in range(n):
            i = _skip(b, i)
        return i
    fixed = {0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
    if c in fixed:
        return i + fixed[c]
    if c in (0xD9, 0xDA, 0xDB):
        w = {0xD9: 1, 0xDA: 2, 0xDB: 4}[c]
        return i + w + int.from_bytes(b[i:i + w], "big")
    if c in (0xDC, 0xDD, 0xDE, 0xDF):
        w = 2 if c in (0xDC, 0xDE) else 4
        n = int.from_bytes(b[i:i + w], "big") * (2 if c >= 0xDE else 1)
        i += w
        for _ in range(n):
            i = _skip(b, i)
        return i
    raise ValueError(f"unexpected MessagePack byte 0x{c:02x}")


def lz_decompress(src, size):
    """The LZ77 codec of src/ingest/lz.c (LZ4's block layout)."""
    out, i = bytearray(), 0

    def length(n):
        nonlocal i
        if n == 15:
            while True:
                b = src[i]
                i += 1
                n += b
                if b != 255:
                    break
        return n

    while i < len(src):
        token = src[i]
        i += 1
        nlit = length(token >> 4)
        out += src[i:i + nlit]
        i += nlit
        if i >= len(src):
            break
        off = src[i] | src[i + 1] << 8
        i += 2
        mlen = length(token & 15) + 4
        assert 0 < off <= len(out)
        for _ in range(mlen):
            out.append(out[-off])
    assert len(out) == size, (len(out), size)
    return bytes(out)


def unpack_block(m, i):
    """(the logs of the block at m[i], the index just past it)."""
    method = m[i + 1]
    raw, zlen = int.from_bytes(m[i + 2:i + 6], "big"), int.from_bytes(m[i + 6:i + 10], "big")
    data = m[i + 10:i + 10 + zlen]
    logs = zlib.decompress(data, -15) if method == 1 else lz_decompress(data, raw)
    assert method in (1, 2) and len(logs) == raw, (method, len(logs), raw)
    return logs, i + 10 + zlen


def split_logs(m):
    """The MessagePack items (one per log) of m, in order, compressed blocks inflated."""
    out, i = [], 0
    while i < len(m):
        if m[i] == BLOCK:
            logs, i = unpack_block(m, i)
            out.extend(split_logs(logs))
            continue
        j = _skip(m, i)
        out.append(m[i:j])
        i = j
    return out


def is_compressed(m):
    """Does m start with a compressed block?"""
    return len(m) > 0 and m[0] == BLOCK


def queued(rc, stream):
    """[(entry id, fields, [log bytes...])] of the stream, oldest first."""
    return [(eid, f, split_logs(f[b"m"])) for eid, f in rc.xrange(stream)]


def queued_logs(rc, stream):
    """Every queued log's MessagePack bytes, in queue order."""
    return [m for _, _, logs in queued(rc, stream) for m in logs]

