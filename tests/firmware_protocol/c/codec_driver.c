/* Test driver for the generated C codec (tests/firmware_protocol/test_c_codec.py).
 *
 * Reads commands on stdin, one per line, and prints what the C code decides:
 *   R          fresh parser (counters zero)          -> nothing
 *   S <hex>    feed these bytes to the parser         -> one "F" line per frame completed
 *   E          smp_parser_expire()                    -> "F" lines
 *   C          counters                               -> "C frames garbage bad_crc bad_length
 *                                                         unknown_type truncated buffered"
 *   D <hex>    smp_decode_frame() on exactly these bytes -> "D <result>", and if 0 the "F"
 *                                                         line and one "V name value" per field
 * F lines: "F <type> <seq> <payload hex re-packed from the struct> <frame re-encoded>".
 */
#include "smp_protocol.h"

#include <stdio.h>
#include <string.h>

#define LINE_MAX_BYTES 65536

static char line[LINE_MAX_BYTES * 2 + 16];
static uint8_t data[LINE_MAX_BYTES];

static void print_hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

static void print_frame(void *ctx, const smp_frame_t *f)
{
    uint8_t payload[SMP_MAX_PAYLOAD];
    uint8_t out[SMP_MAX_FRAME];
    int size = smp_pack_payload(f, payload);
    size_t n = smp_encode(f, out, sizeof out);
    (void)ctx;
    printf("F %u %u ", (unsigned)f->type, (unsigned)f->seq);
    print_hex(payload, size < 0 ? 0u : (size_t)size);
    printf(" ");
    print_hex(out, n);
    printf("\n");
}

static void print_field(void *ctx, const char *name, int64_t value, const uint8_t *bytes,
                        size_t n_bytes)
{
    (void)ctx;
    printf("V %s ", name);
    if (bytes != NULL) {
        print_hex(bytes, n_bytes);
    } else {
        printf("%lld", (long long)value);
    }
    printf("\n");
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t parse_hex(const char *s)
{
    size_t n = 0;
    while (hexval(s[0]) >= 0 && hexval(s[1]) >= 0 && n < sizeof data) {
        data[n++] = (uint8_t)(hexval(s[0]) * 16 + hexval(s[1]));
        s += 2;
    }
    return n;
}

int main(void)
{
    smp_parser_t parser;
    smp_frame_t frame;
    smp_parser_init(&parser, print_frame, NULL);
    while (fgets(line, sizeof line, stdin) != NULL) {
        const char *arg = line[1] == ' ' ? line + 2 : "";
        size_t n;
        switch (line[0]) {
        case 'R':
            smp_parser_init(&parser, print_frame, NULL);
            break;
        case 'S':
            n = parse_hex(arg);
            smp_parser_feed(&parser, data, n);
            break;
        case 'E':
            smp_parser_expire(&parser);
            break;
        case 'C':
            printf("C %lu %lu %lu %lu %lu %lu %lu\n", (unsigned long)parser.stats.frames,
                   (unsigned long)parser.stats.garbage_bytes, (unsigned long)parser.stats.bad_crc,
                   (unsigned long)parser.stats.bad_length,
                   (unsigned long)parser.stats.unknown_type,
                   (unsigned long)parser.stats.truncated,
                   (unsigned long)smp_parser_buffered(&parser));
            break;
        case 'D':
            n = parse_hex(arg);
            memset(&frame, 0, sizeof frame);
            {
                smp_result_t r = smp_decode_frame(data, n, &frame);
                printf("D %d\n", (int)r);
                if (r == SMP_OK) {
                    print_frame(NULL, &frame);
                    smp_visit_fields(&frame, print_field, NULL);
                }
            }
            break;
        default:
            break;
        }
    }
    return 0;
}
