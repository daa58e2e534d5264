/*
 * fuzz_frame.c — the frame decoder on arbitrary input. The first byte
 * picks the mode and a small maximum; the rest is fed the way a connection
 * does (decode every frame, keep the remainder), in chunks whose sizes come
 * from the second byte. Each decoded frame must lie inside the input, and
 * re-encoding it must give back the bytes it came from (LEN32).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "udsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uds_framer f;
    f.mode = 1 + data[0] % 3;
    f.max = (size_t)(data[0] >> 2) * 16; /* 0 = default */
    size_t chunk = 1 + data[1];
    const uint8_t *in = data + 2;
    size_t len = size - 2, have = 0, off = 0;
    while (have < len) {
        have = have + chunk < len ? have + chunk : len;
        for (;;) {
            uds_frame fr;
            if (f.mode == UDS_FRAME_PACKET && have == off)
                break;
            int r = uds_frame_decode(&f, in + off, have - off, &fr);
            if (r < 0)
                return 0; /* a bad stream: the connection would be closed */
            if (r == 0)
                break;
            if ((size_t)r > have - off || fr.len > (size_t)r)
                abort();
            const uint8_t *p = fr.data;
            if (fr.len && (p < in + off || p + fr.len > in + off + (size_t)r))
                abort();
            if (f.mode == UDS_FRAME_LEN32) {
                uint8_t *enc = malloc(fr.len + UDS_FRAME_HDR_LEN);
                ssize_t e = uds_frame_encode(&f, fr.data, fr.len, enc,
                                             fr.len + UDS_FRAME_HDR_LEN);
                if (e != r || memcmp(enc, in + off, (size_t)r) != 0)
                    abort();
                free(enc);
            }
            off += (size_t)r;
        }
    }
    return 0;
}
