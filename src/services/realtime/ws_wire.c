/*
 * ws_wire.c - the small pieces of RFC 6455 the hub does itself: the
 * handshake's accept key (SHA-1 and base64 from nettle), server frame
 * headers, and reading a frame header to learn a frame's size before any
 * of it is buffered. Parsing proper (masks, control frames, fragments,
 * UTF-8, close codes) is wslay's, in realtime.c.
 */
#include "services/realtime/realtime.h"

#include "core/err.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int realtime_ws_accept(const char *key, char out[29])
{
    /* 16 bytes in base64 are 24 characters ending in "==". */
    if (!key || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
        return LOCI_EINVAL;
    struct base64_decode_ctx dc;
    uint8_t raw[BASE64_DECODE_LENGTH(24)];
    size_t n = sizeof(raw);
    base64_decode_init(&dc);
    if (!base64_decode_update(&dc, &n, raw, 24, key) || !base64_decode_final(&dc) || n != 16)
        return LOCI_EINVAL;
    struct sha1_ctx sc;
    uint8_t digest[SHA1_DIGEST_SIZE];
    sha1_init(&sc);
    sha1_update(&sc, 24, (const uint8_t *)key);
    sha1_update(&sc, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
    sha1_digest(&sc, SHA1_DIGEST_SIZE, digest);
    base64_encode_raw(out, SHA1_DIGEST_SIZE, digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
    return LOCI_OK;
}

size_t realtime_ws_header(uint8_t out[10], unsigned opcode, uint64_t n)
{
    out[0] = (uint8_t)(0x80u | (opcode & 0x0fu));
    if (n < 126) {
        out[1] = (uint8_t)n;
        return 2;
    }
    if (n <= 0xffffu) {
        out[1] = 126;
        out[2] = (uint8_t)(n >> 8);
        out[3] = (uint8_t)n;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    return 10;
}

int realtime_ws_frame(const uint8_t *p, size_t n, struct realtime_frame *out)
{
    if (n < 2)
        return 0;
    size_t need = 2;
    unsigned len7 = p[1] & 0x7fu;
    if (len7 == 126)
        need += 2;
    else if (len7 == 127)
        need += 8;
    bool is_masked = (p[1] & 0x80u) != 0;
    if (is_masked)
        need += 4;
    if (n < need)
        return 0;
    uint64_t len = len7;
    if (len7 == 126) {
        len = ((uint64_t)p[2] << 8) | p[3];
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
        if (len >> 63)
            return LOCI_ETOOBIG;
    }
    out->is_fin = (p[0] & 0x80u) != 0;
    out->opcode = p[0] & 0x0fu;
    out->is_masked = is_masked;
    out->header_len = need;
    out->payload_len = len;
    return 1;
}
