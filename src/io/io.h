/*
 * src/io internals: what the file readers (idx.c, csv.c, and the parameter
 * loader in nn/params.c) and the text writers (svg_plot.c, dot.c) share.
 * Included by library sources only (not installed).
 *
 *   - nb__file: a file opened for reading, plain or gzip-compressed, that is
 *     known to be a regular file (FIFOs, devices and directories are refused
 *     before anything is read, so /dev/zero or a FIFO never blocks or fills
 *     memory);
 *   - nb__read_file: a whole file into one buffer, with a size limit;
 *   - (nb__c_locale_begin/end, the "C" locale around strtod and printf of
 *     numbers, live in src/tensor.h: the core's messages use them too.)
 */
#ifndef NABLA_IO_H
#define NABLA_IO_H

#include "nabla.h" /* (the .c files of src/io include internal.h themselves: src/nn
                       uses this header too, and sees only nabla.h through it) */

#include <locale.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nb__file {
    const char *who, *path; /* for messages: "<who>: <path>: ..." */
    int fd;
    bool gz;                /* reading through zlib                     */
    void *gzf;              /* the gzFile when gz                       */
    uint64_t size;          /* bytes on disk (st_size)                  */
} nb__file;

/* Opens `path` (never blocking: a FIFO is refused, not waited on) and checks
   it is a regular file; with gunzip, a file starting with the gzip magic
   1f 8b is read through zlib.  0, or -1 with "<who>: <path>: ..." set. */
int nb__file_open(nb__file *f, const char *who, const char *path, bool gunzip);

/* Reads up to n bytes (fewer only at the end of the data).  The number read,
   or -1 with the error set (read error, corrupted or truncated gzip data). */
int64_t nb__file_read(nb__file *f, void *buf, size_t n);

void nb__file_close(nb__file *f);

/* Reads a whole file into a new nb__malloc buffer of *len bytes, refusing
   more than `max` bytes (after decompression; a plain file larger than max
   is refused before it is read).  NULL + "<who>: <path>: ..." on failure. */
unsigned char *nb__read_file_max(const char *who, const char *path, size_t *len, bool gunzip,
                                 size_t max);

/* nb__read_file_max with no limit but the memory (parameter files). */
unsigned char *nb__read_file(const char *who, const char *path, size_t *len, bool gunzip);

/* (The readers' tensors: nb__data_tensor, declared in nn/hook.h.) */

/* Rewrites the current message (typically "out of memory (N bytes)") as
   "<who>: <path>: <message>" unless it already names both. */
void nb__err_in_file(const char *who, const char *path);

/* nb__c_locale_begin/end: src/tensor.h (the core's messages use them too) */

/* Writes at most n-1 bytes of s[0..len) into out (NUL-terminated), with
   control characters and DEL escaped (\r, \n, \t, \0, \xNN), so a message
   never carries a raw carriage return.  Returns out. */
char *nb__escape(const unsigned char *s, size_t len, char *out, size_t n);

#endif /* NABLA_IO_H */
