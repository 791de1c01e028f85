/*
 * Atomic, durable file replacement: unique temporary file in the target's
 * folder, fsync, rename, fsync of the folder (see atomic_write.h).
 */
#include "atomic_write.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *kind_of(mode_t m) {
    if (S_ISLNK(m)) return "a symbolic link";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a folder";
    return "not a regular file";
}

/* 64 bits that differ between calls, threads and processes (not secret:
   O_EXCL, not the name, is what makes the file ours). */
static uint64_t name_bits(void) {
    static uint64_t counter;
    uint64_t n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^ (n << 40) ^
                 (uint64_t)(uintptr_t)&ts;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int write_all(int fd, const unsigned char *b, size_t len) {
    while (len > 0) {
        size_t chunk = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        ssize_t w = write(fd, b, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        b += w;
        len -= (size_t)w;
    }
    return 0;
}

int nb__write_file_atomic(const char *who, const char *path, const void *buf, size_t len) {
    size_t plen = strlen(path);
    if (plen == 0 || path[plen - 1] == '/') {
        nb__err("%s: '%s' is not a file name", who, path);
        return -1;
    }
    /* 1. what is there now */
    struct stat st;
    bool existed = false;
    mode_t mode = 0;
    if (lstat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            nb__err("%s: %s is %s, not a regular file: refusing to replace it", who, path,
                    kind_of(st.st_mode));
            return -1;
        }
        existed = true;
        mode = st.st_mode & 07777;
    } else if (errno != ENOENT) {
        nb__err("%s: %s: %s", who, path, strerror(errno));
        return -1;
    }
    /* the folder and the base name */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    const char *base = slash ? slash + 1 : path;
    char *dir = nb__malloc(dlen + 2);
    char *tmp = nb__malloc(plen + 64);
    if (!dir || !tmp) {
        nb__free(dir);
        nb__free(tmp);
        nb__err("%s: %s: out of memory", who, path);
        return -1;
    }
    if (slash) {
        memcpy(dir, path, dlen ? dlen : 1); /* "/name": the root */
        dir[dlen ? dlen : 1] = 0;
    } else {
        memcpy(dir, ".", 2);
    }
    /* 2. our own temporary file */
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        /* <dir>/.<base>.<pid>.<random>.tmp */
        snprintf(tmp, plen + 64, "%.*s.%s.%ld.%016llx.tmp", (int)(slash ? dlen + 1 : 0), path,
                 base, (long)getpid(), (unsigned long long)name_bits());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  existed ? 0600 : 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        nb__err("%s: %s: cannot open a new temporary file in %s for writing (%s)", who, path, dir,
                strerror(errno));
        nb__free(dir);
        nb__free(tmp);
        return -1;
    }
    /* 3. write, sync, close, rename, sync the folder */
    const char *step = NULL;
    int err = 0;
    if (existed && fchmod(fd, mode) != 0) step = "cannot set the permissions of";
    else if (write_all(fd, buf, len) != 0) step = "cannot write";
    else if (fsync(fd) != 0) step = "cannot sync";
    if (step) err = errno;
    if (close(fd) != 0 && !step) step = "cannot close", err = errno;
    if (!step && rename(tmp, path) != 0) step = "cannot rename over", err = errno;
    if (step) {
        nb__err("%s: %s: %s the file (%s); it is unchanged", who, path, step, strerror(err));
        unlink(tmp);
        nb__free(dir);
        nb__free(tmp);
        return -1;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL && errno != EROFS)) {
        nb__err("%s: %s: written, but its folder %s cannot be synced (%s)", who, path, dir,
                strerror(errno));
        rc = -1;
    }
    if (dfd >= 0) close(dfd);
    nb__free(dir);
    nb__free(tmp);
    return rc;
}
