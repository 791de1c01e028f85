/*
 * nb_params_save (and through the same helper nb_checkpoint_save) replaces
 * its file atomically and safely: permission bits kept, symbolic links,
 * FIFOs and folders at the target refused, a symbolic link at the old fixed
 * temporary name "<path>.tmp" never followed, no temporary file left behind,
 * and saves running at once to one path never let a reader see a broken
 * file (issue 13, "Files").
 */
/* mknod, makedev, S_IFCHR */
#define _DEFAULT_SOURCE
#include "check.h"
#include "nabla.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

static char dir[1024];

static const char *in_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

static nb_params *store_of(double v, int64_t n) {
    nb_params *P = nb_params_new();
    nb_tensor *t = nb_params_add(P, "w", 1, (int64_t[]){n});
    double *d = nb_data_mut(t);
    for (int64_t i = 0; i < n; i++) d[i] = v + (double)i;
    return P;
}

static int count_entries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static bool file_is(const char *path, const char *text) {
    char buf[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strcmp(buf, text) == 0;
}

static void test_mode_kept(void) {
    char path[1100];
    nb_params *P = store_of(1, 10);
    in_dir(path, sizeof path, "mode.nbp");
    unlink(path);
    CHECK(nb_params_save(P, path) == 0);
    const mode_t modes[3] = {0600, 0640, 0604};
    for (int k = 0; k < 3; k++) {
        CHECK(chmod(path, modes[k]) == 0);
        CHECK(nb_params_save(P, path) == 0);
        struct stat st;
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == modes[k]);
    }
    unlink(path);
    nb_params_free(P);
}

static void test_refusals(void) {
    char path[1100], victim[1100], tmp[1200];
    nb_params *P = store_of(2, 10);
    /* a symbolic link at the target: refused, the file it points to untouched */
    in_dir(victim, sizeof victim, "victim.txt");
    in_dir(path, sizeof path, "link.nbp");
    write_text(victim, "precious\n");
    unlink(path);
    CHECK(symlink(victim, path) == 0);
    nb_clear_error();
    CHECK(nb_params_save(P, path) == -1 && has(nb_last_error(), "symbolic link") &&
          has(nb_last_error(), path));
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(file_is(victim, "precious\n"));
    unlink(path);
    /* a FIFO: refused (and the save does not block on it) */
    in_dir(path, sizeof path, "fifo.nbp");
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(nb_params_save(P, path) == -1 && has(nb_last_error(), "FIFO"));
    CHECK(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode));
    unlink(path);
    /* a folder */
    in_dir(path, sizeof path, "folder.nbp");
    mkdir(path, 0700);
    CHECK(nb_params_save(P, path) == -1 && has(nb_last_error(), "folder"));
    rmdir(path);
    /* a device: a node of our own (never a real one such as /dev/null, which
       a save without this guarantee would replace); creating it needs root */
    in_dir(path, sizeof path, "device.nbp");
    unlink(path);
    if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0) {
        CHECK(nb_params_save(P, path) == -1 && has(nb_last_error(), "device"));
        CHECK(lstat(path, &st) == 0 && S_ISCHR(st.st_mode));
        unlink(path);
    } else {
        printf("files_atomic: no device node check (mknod: %s)\n", strerror(errno));
    }
    /* a symbolic link planted at the old fixed temporary name is never followed */
    in_dir(path, sizeof path, "plant.nbp");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(path);
    unlink(tmp);
    CHECK(symlink(victim, tmp) == 0);
    CHECK(nb_params_save(P, path) == 0);
    CHECK(file_is(victim, "precious\n"));
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    nb_params *Q = store_of(0, 10);
    CHECK(nb_params_load(Q, path) == 0 && nb_params_data(Q)[3] == 5.0);
    nb_params_free(Q);
    unlink(tmp);
    unlink(path);
    unlink(victim);
    nb_params_free(P);
}

static void test_no_leftovers(void) {
    char path[1100];
    int before = count_entries();
    nb_params *P = store_of(3, 100);
    in_dir(path, sizeof path, "clean.nbp");
    for (int k = 0; k < 5; k++) CHECK(nb_params_save(P, path) == 0);
    CHECK(count_entries() == before + 1); /* the file itself, no temporary file */
    /* a failed save (folder missing) leaves nothing either */
    CHECK(nb_params_save(P, "/nonexistent-nabla-dir/x.nbp") == -1);
    unlink(path);
    CHECK(count_entries() == before);
    nb_params_free(P);
}

/* Two writers save different stores to one path while a reader loads it. */
enum { ROUNDS = 40, N = 200000 };
static char shared_path[1100];
static int writer_fail, reader_fail, reader_loads, stop_reader;

static void *writer(void *arg) {
    nb_params *P = store_of(*(double *)arg, N);
    for (int k = 0; k < ROUNDS; k++)
        if (nb_params_save(P, shared_path) != 0) {
            fprintf(stderr, "writer: %s\n", nb_last_error());
            __atomic_add_fetch(&writer_fail, 1, __ATOMIC_RELAXED);
        }
    nb_params_free(P);
    nb_cleanup();
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    nb_params *Q = store_of(0, N);
    while (!__atomic_load_n(&stop_reader, __ATOMIC_ACQUIRE)) {
        if (nb_params_load(Q, shared_path) != 0) {
            fprintf(stderr, "reader: %s\n", nb_last_error());
            reader_fail++;
            continue;
        }
        const double *d = nb_params_data(Q);
        /* one version or the other, never a mix */
        if (!((d[0] == 1000 || d[0] == 2000) && d[N - 1] == d[0] + (N - 1))) reader_fail++;
        reader_loads++;
    }
    nb_params_free(Q);
    nb_cleanup();
    return NULL;
}

static void test_concurrent(void) {
    in_dir(shared_path, sizeof shared_path, "shared.nbp");
    nb_params *P = store_of(1000, N);
    CHECK(nb_params_save(P, shared_path) == 0);
    nb_params_free(P);
    int before = count_entries();
    double a = 1000, b = 2000;
    pthread_t w1, w2, r;
    pthread_create(&r, NULL, reader, NULL);
    pthread_create(&w1, NULL, writer, &a);
    pthread_create(&w2, NULL, writer, &b);
    pthread_join(w1, NULL);
    pthread_join(w2, NULL);
    __atomic_store_n(&stop_reader, 1, __ATOMIC_RELEASE);
    pthread_join(r, NULL);
    CHECK(writer_fail == 0);
    CHECK(reader_fail == 0);
    CHECK(reader_loads > 0);
    CHECK(count_entries() == before);
    unlink(shared_path);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/out/test_files_atomic", NABLA_BINARY_DIR);
    char up[1100];
    snprintf(up, sizeof up, "%s/out", NABLA_BINARY_DIR);
    mkdir(up, 0777);
    mkdir(dir, 0777);
    test_mode_kept();
    test_refusals();
    test_no_leftovers();
    test_concurrent();
    nb_cleanup();
    printf("files_atomic: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
