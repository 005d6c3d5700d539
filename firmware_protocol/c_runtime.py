"""The fixed part of the generated C codec: CRC-32, single-frame decode, the stream parser.

Nothing here depends on the catalogue (sizes, CRC_EXTRA and (un)packing come from the
generated part, `c_codec.py`), so it is plain C text. The parser mirrors
`frame.StreamDecoder._scan` line for line: same candidate rules, same resume point after a bad
candidate, same counters; the tests compare the two on a mutated corpus.
"""

from __future__ import annotations

# Declarations appended to the generated header.
RUNTIME_H = r"""
/* ------------------------------------------------------------------ CRC */

/* CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init and xorout 0xFFFFFFFF), continued from
 * `crc` exactly as zlib's crc32(crc, data, len): start with crc = 0. */
uint32_t smp_crc32(uint32_t crc, const uint8_t *data, size_t len);
/* The frame CRC: CRC-32 over LEN..PAYLOAD (`body`), continued over the one CRC_EXTRA byte. */
uint32_t smp_frame_crc(const uint8_t *body, size_t len, uint8_t crc_extra);

/* ------------------------------------------------------------------ whole frames */

typedef enum {
    SMP_OK = 0,
    SMP_ERR_SHORT = 1,        /* fewer than SMP_OVERHEAD bytes */
    SMP_ERR_NO_SYNC = 2,      /* does not start with AA 55 */
    SMP_ERR_UNKNOWN_TYPE = 3, /* TYPE is not in the catalogue */
    SMP_ERR_BAD_LENGTH = 4,   /* LEN is not the type's payload size */
    SMP_ERR_FRAME_SIZE = 5,   /* the buffer is not exactly one frame long */
    SMP_ERR_BAD_CRC = 6       /* CRC mismatch */
} smp_result_t;

/* Encode `frame` (type, seq, message) into `out`. Returns the frame length, or 0 if the type
 * is unknown or `out_size` is too small (SMP_MAX_FRAME always suffices). */
size_t smp_encode(const smp_frame_t *frame, uint8_t *out, size_t out_size);
/* Decode exactly one frame of `len` bytes (checks in the order of the Python decode_frame). */
smp_result_t smp_decode_frame(const uint8_t *data, size_t len, smp_frame_t *out);

/* ------------------------------------------------------------------ stream parser */

/* What the parser accepted and dropped (Python: DecoderStats). Counters wrap at 2^32. */
typedef struct {
    uint32_t frames;
    uint32_t garbage_bytes; /* every byte not part of a valid frame */
    uint32_t bad_crc;
    uint32_t bad_length;
    uint32_t unknown_type;
    uint32_t truncated;     /* candidates given up by smp_parser_expire() */
} smp_parser_stats_t;

/* Called once per valid frame, in stream order. It must not feed the same parser. */
typedef void (*smp_frame_handler)(void *ctx, const smp_frame_t *frame);

/* A byte-at-a-time frame parser with a fixed buffer and no heap. The buffer never holds more
 * than one frame: a candidate (SYNC, known TYPE, matching LEN) is held until its CRC can be
 * checked; a bad candidate is dropped and the search resumes one byte past its SYNC, so a frame
 * behind a false start (or nested in a damaged frame) is still found. One byte can therefore
 * complete several frames. Frames and counters never depend on how the bytes arrive. */
typedef struct {
    uint8_t buf[SMP_MAX_FRAME];
    size_t len;
    smp_parser_stats_t stats;
    smp_frame_handler on_frame;
    void *ctx;
} smp_parser_t;

void smp_parser_init(smp_parser_t *p, smp_frame_handler on_frame, void *ctx);
/* One received byte; returns the number of frames it completed (handler calls). */
unsigned smp_parser_push(smp_parser_t *p, uint8_t byte);
/* Many bytes, as if pushed one by one. */
unsigned smp_parser_feed(smp_parser_t *p, const uint8_t *data, size_t len);
/* The line has been quiet for SMP_INTER_BYTE_TIMEOUT_MS: give up the held candidate (it will
 * never complete) and decode what was behind it. Nothing stays buffered. */
unsigned smp_parser_expire(smp_parser_t *p);
/* Bytes held back, waiting for the rest of a frame (a timer runs while this is > 0). */
size_t smp_parser_buffered(const smp_parser_t *p);
/* Drop buffered bytes (after a reconnect); the counters are kept. */
void smp_parser_reset(smp_parser_t *p);
"""

# Definitions appended to the generated source (after smp_crc32_table and the pack functions).
RUNTIME_C = r"""
/* ------------------------------------------------------------------ CRC */

uint32_t smp_crc32(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc = smp_crc32_table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

uint32_t smp_frame_crc(const uint8_t *body, size_t len, uint8_t crc_extra)
{
    return smp_crc32(smp_crc32(0u, body, len), &crc_extra, 1u);
}

/* ------------------------------------------------------------------ whole frames */

size_t smp_encode(const smp_frame_t *frame, uint8_t *out, size_t out_size)
{
    int size = smp_payload_size(frame->type);
    uint32_t crc;
    size_t n;
    if (size < 0 || out_size < (size_t)size + SMP_OVERHEAD) {
        return 0u;
    }
    n = (size_t)size;
    out[0] = SMP_SYNC0;
    out[1] = SMP_SYNC1;
    out[2] = (uint8_t)size;
    out[3] = frame->seq;
    out[4] = frame->type;
    smp_pack_payload(frame, out + SMP_HEADER_SIZE);
    crc = smp_frame_crc(out + 2, n + 3u, (uint8_t)smp_crc_extra(frame->type));
    smp_put_u32(out + SMP_HEADER_SIZE + n, crc);
    return n + SMP_OVERHEAD;
}

smp_result_t smp_decode_frame(const uint8_t *data, size_t len, smp_frame_t *out)
{
    int size;
    if (len < SMP_OVERHEAD) {
        return SMP_ERR_SHORT;
    }
    if (data[0] != SMP_SYNC0 || data[1] != SMP_SYNC1) {
        return SMP_ERR_NO_SYNC;
    }
    size = smp_payload_size(data[4]);
    if (size < 0) {
        return SMP_ERR_UNKNOWN_TYPE;
    }
    if (data[2] != (uint8_t)size) {
        return SMP_ERR_BAD_LENGTH;
    }
    if (len != (size_t)size + SMP_OVERHEAD) {
        return SMP_ERR_FRAME_SIZE;
    }
    if (smp_frame_crc(data + 2, (size_t)size + 3u, (uint8_t)smp_crc_extra(data[4]))
        != smp_get_u32(data + SMP_HEADER_SIZE + size)) {
        return SMP_ERR_BAD_CRC;
    }
    out->seq = data[3];
    out->type = data[4];
    smp_unpack_payload(data[4], data + SMP_HEADER_SIZE, out);
    return SMP_OK;
}

/* ------------------------------------------------------------------ stream parser */

void smp_parser_init(smp_parser_t *p, smp_frame_handler on_frame, void *ctx)
{
    memset(p, 0, sizeof *p);
    p->on_frame = on_frame;
    p->ctx = ctx;
}

size_t smp_parser_buffered(const smp_parser_t *p)
{
    return p->len;
}

void smp_parser_reset(smp_parser_t *p)
{
    p->len = 0u;
}

/* Index of the first AA 55 at or after `from`, or `n` if none. */
static size_t smp_find_sync(const uint8_t *buf, size_t n, size_t from)
{
    size_t i;
    for (i = from; i + 1u < n; i++) {
        if (buf[i] == SMP_SYNC0 && buf[i + 1u] == SMP_SYNC1) {
            return i;
        }
    }
    return n;
}

/* Decide on everything in the buffer that can be decided (frame.StreamDecoder._scan). */
static unsigned smp_scan(smp_parser_t *p, int final)
{
    uint8_t *buf = p->buf;
    size_t n = p->len, pos = 0u, valid = 0u, keep = n, i, end;
    int have_keep = 0, size;
    unsigned frames = 0u;
    smp_frame_t frame;
    for (;;) {
        i = smp_find_sync(buf, n, pos);
        if (i >= n) {
            break;
        }
        if (n - i < SMP_HEADER_SIZE) {
            if (!final) {
                keep = i; /* too few bytes after the sync for a header: wait */
                have_keep = 1;
                break;
            }
            pos = i + 1u;
            continue;
        }
        size = smp_payload_size(buf[i + 4u]);
        if (size < 0) {
            p->stats.unknown_type++;
            pos = i + 1u;
            continue;
        }
        if (buf[i + 2u] != (uint8_t)size) {
            p->stats.bad_length++;
            pos = i + 1u;
            continue;
        }
        end = i + (size_t)size + SMP_OVERHEAD;
        if (end > n) {
            if (!final) {
                keep = i; /* hold the candidate until its CRC can be checked */
                have_keep = 1;
                break;
            }
            p->stats.truncated++;
            pos = i + 1u;
            continue;
        }
        if (smp_frame_crc(buf + i + 2u, (size_t)size + 3u, (uint8_t)smp_crc_extra(buf[i + 4u]))
            != smp_get_u32(buf + end - SMP_CRC_SIZE)) {
            p->stats.bad_crc++;
            pos = i + 1u;
            continue;
        }
        frame.seq = buf[i + 3u];
        frame.type = buf[i + 4u];
        smp_unpack_payload(frame.type, buf + i + SMP_HEADER_SIZE, &frame);
        p->stats.frames++;
        frames++;
        valid += end - i;
        pos = end;
        if (p->on_frame != NULL) {
            p->on_frame(p->ctx, &frame);
        }
    }
    if (!have_keep) {
        /* No SYNC in buf[pos:]; a last byte AA may be the first half of one. */
        keep = (!final && n > pos && buf[n - 1u] == SMP_SYNC0) ? n - 1u : n;
    }
    p->stats.garbage_bytes += (uint32_t)(keep - valid);
    memmove(buf, buf + keep, n - keep);
    p->len = n - keep;
    return frames;
}

unsigned smp_parser_push(smp_parser_t *p, uint8_t byte)
{
    /* After every scan at most SMP_MAX_FRAME - 1 bytes are held (a candidate is decided as
     * soon as its last byte is in), so there is always room for one more. */
    p->buf[p->len++] = byte;
    return smp_scan(p, 0);
}

unsigned smp_parser_feed(smp_parser_t *p, const uint8_t *data, size_t len)
{
    unsigned frames = 0u;
    size_t i;
    for (i = 0; i < len; i++) {
        frames += smp_parser_push(p, data[i]);
    }
    return frames;
}

unsigned smp_parser_expire(smp_parser_t *p)
{
    return p->len ? smp_scan(p, 1) : 0u;
}
"""
