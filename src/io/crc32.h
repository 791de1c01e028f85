/*
 * CRC-32 (internal): the checksum of nabla's parameter and checkpoint files.
 */
#ifndef NABLA_IO_CRC32_H
#define NABLA_IO_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32),
   continuing crc (start with 0).  Thread-safe. */
uint32_t nb__crc32(uint32_t crc, const void *buf, size_t len);

#endif /* NABLA_IO_CRC32_H */
