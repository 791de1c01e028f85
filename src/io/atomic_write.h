/*
 * Atomic, durable replacement of a file (internal): used by nb_params_save
 * and nb_checkpoint_save.
 */
#ifndef NABLA_IO_ATOMIC_WRITE_H
#define NABLA_IO_ATOMIC_WRITE_H

#include <stddef.h>

/* Writes buf[0..len) as the new content of `path`, all or nothing:
 *   1. lstat(path): something there that is not a regular file (a symbolic
 *      link, FIFO, device, socket, folder) is refused, never replaced; a
 *      regular file's permission bits are kept for the new file (a new file
 *      gets 0666 minus the umask);
 *   2. a temporary file with a unique name ".<base>.<pid>.<random>.tmp"
 *      is created in path's folder with open(O_CREAT | O_EXCL | O_NOFOLLOW),
 *      so neither a symbolic link nor another writer's file is ever followed
 *      or shared (concurrent writers each have their own; the last rename
 *      wins, and a reader sees one complete version or another);
 *   3. the bytes are written, fsync'ed, the file closed, renamed over path,
 *      and the folder fsync'ed, so the rename survives a power loss.
 * On any failure the temporary file is removed and path is left as it was
 * (a process killed between 2 and 3 can leave a temporary file behind; path
 * itself is never half-written).  0, or -1 with "<who>: <path>: ..." set. */
int nb__write_file_atomic(const char *who, const char *path, const void *buf, size_t len);

#endif /* NABLA_IO_ATOMIC_WRITE_H */
