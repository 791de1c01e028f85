/*
 * CRC-32 (IEEE 802.3): the byte-wise table method over the reflected
 * polynomial 0xEDB88320; the table is built once, on first use.
 */
#include "crc32.h"

#include <pthread.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t nb__crc32(uint32_t crc, const void *buf, size_t len) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = buf;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = crc_table[(crc ^ b[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}
