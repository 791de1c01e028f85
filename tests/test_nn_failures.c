/* Allocation failures injected at every point of a whole training pipeline
   (read data, build a network, train, save, load, draw): each run either
   succeeds or fails cleanly with a message, never crashes, and (under
   LeakSanitizer) leaks nothing. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* 0 on success, -1 on a (clean) failure */
static int pipeline(void) {
    int rc = -1;
    size_t mark = nb_scope_begin();
    nb_params *P = NULL, *Q = NULL;
    nb_mlp *net = NULL, *net2 = NULL;
    nb_optim *opt = NULL;
    nb_batcher *bat = NULL;
    nb_plot *pl = NULL;

    nb_tensor *X = nb_csv_read(tmp("x.csv"), ',', true);      /* (8, 3): 2 features, a label */
    nb_tensor *img = nb_idx_read(tmp("y.idx"));               /* (8,) */
    if (!X || !img) goto out;
    P = nb_params_new();
    if (!P) goto out;
    net = nb_mlp_new(P, "m", 3, (int64_t[]){2, 6, 2}, NB_ACT_RELU, NB_INIT_AUTO, 1);
    opt = nb_adam_new(P, 0.01, 0.9, 0.999, 1e-8, 0.0);
    bat = nb_batcher_new(8, 4, true, false, 3);
    if (!net || !opt || !bat) goto out;
    nb_tensor *feat = nb_reshape(X, 2, (int64_t[]){8, 3});
    if (!feat) goto out;
    for (int e = 0; e < 2; e++) {
        const int64_t *idx;
        int64_t k;
        while ((k = nb_batcher_next(bat, &idx)) > 0) {
            size_t m = nb_scope_begin();
            nb_tensor *rows = nb_gather_rows(feat, idx, k);
            nb_tensor *y = nb_gather_rows(img, idx, k);
            /* the first two columns as features: rows (k, 3) @ [[1,0],[0,1],[0,0]] */
            nb_tensor *sel = nb_matrix((double[]){1, 0, 0, 1, 0, 0}, 3, 2);
            nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(net, nb_matmul(rows, sel)), y);
            int bad = !loss || nb_backward(loss, NULL) || nb_optim_step(opt);
            nb_params_zero_grad(P);
            nb_scope_end(m);
            if (bad) goto out;
        }
    }
    if (nb_params_save(P, tmp("m.nbp"))) goto out;
    Q = nb_params_new();
    if (!Q) goto out;
    net2 = nb_mlp_new(Q, "m", 3, (int64_t[]){2, 6, 2}, NB_ACT_RELU, NB_INIT_AUTO, 9);
    if (!net2 || nb_params_load(Q, tmp("m.nbp"))) goto out;
    if (memcmp(nb_params_data(P), nb_params_data(Q), sizeof(double) * (size_t)nb_params_numel(P)))
        goto out;
    pl = nb_plot_new(1, 200, 200);
    if (!pl || nb_plot_panel(pl, 0, 0, 1, 0, 1, "t", "x", "y")) goto out;
    double z[9] = {0, 1, 2, 1, 2, 3, 2, 3, 4};
    if (nb_plot_heatmap(pl, 3, 3, z, 0, 4) || nb_plot_contour(pl, 3, 3, z, 0, 4, 3, "black", 1) ||
        nb_plot_line(pl, 3, (double[]){0, 0.5, 1}, (double[]){0, 1, 0}, "red", 1, 2) ||
        nb_plot_save(pl, tmp("p.svg")))
        goto out;
    rc = 0;
out:
    nb_plot_free(pl);
    nb_batcher_free(bat);
    nb_optim_free(opt);
    nb_mlp_free(net);
    nb_mlp_free(net2);
    nb_params_free(P);
    nb_params_free(Q);
    nb_scope_end(mark);
    return rc;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/nabla_nn_fail_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    FILE *f = fopen(tmp("x.csv"), "w");
    fprintf(f, "a,b,label\n0,0,0\n1,1,0\n0,1,1\n1,0,1\n0.1,0.1,0\n0.9,0.9,0\n0.1,0.9,1\n0.9,0.1,1\n");
    fclose(f);
    const unsigned char idx[] = {0, 0, 8, 1, 0, 0, 0, 8, 0, 0, 1, 1, 0, 0, 1, 1};
    f = fopen(tmp("y.idx"), "wb");
    fwrite(idx, 1, sizeof idx, f);
    fclose(f);

    CHECK(pipeline() == 0); /* it works without failures */
    int failures = 0, successes = 0, silent = 0;
    for (int k = 1; k <= 400; k++) {
        nb_trim(); /* an empty block cache: tensors allocate too */
        nb_clear_error();
        nb__fail_alloc_after(k);
        int rc = pipeline();
        bool hit = nb__fail_alloc_fired();
        nb__fail_alloc_after(0);
        if (rc == 0) successes++;
        else {
            failures++;
            if (!nb_last_error()) silent++;
        }
        if (!hit) break; /* the whole pipeline ran with fewer allocations than k */
    }
    printf("%d injected failures handled, %d runs succeeded\n", failures, successes);
    CHECK(failures > 20);
    CHECK(silent == 0);
    CHECK(pipeline() == 0); /* and everything still works afterwards */
    const char *files[] = {"x.csv", "y.idx", "m.nbp", "m.nbp.tmp", "p.svg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) unlink(tmp(files[i]));
    rmdir(dir);
    nb_cleanup();
    return check_report("nn_failures");
}
