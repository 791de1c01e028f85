/* Every op of src/ops.def has a test: its constructor is called by at least
   one test file (tests/test_*.c other than this one, or a table header the
   tests share, like tests/opcases.h).  The list of ops is
   generated from ops.def, so an op added without a test fails here.  Ops
   that have no constructor of their own name the call that makes them. */
#include "check.h"
#include "tensor.h"

#include <dirent.h>
#include <stdlib.h>

static const char *const OPS[] = {
#define NB_LEAF(ID, name) #name,
#define NB_OP(ID, name, arity, rules) #name,
#include "ops.def"
#undef NB_LEAF
#undef NB_OP
};

/* the call that makes an op, when it is not nb_<name>( */
static const char *call_of(const char *op, char *buf, size_t n) {
    static const char *const special[][2] = {
        {"in", "nb_new("},          {"const", "nb_zero_grad("}, /* consts: inside rules (every gradient test) */
        {"aux", "nb_set_name("},    {"unary_grad", "nb_gradgradcheck("}, /* the fused kernel's own rules */
        {"custom", "nb_apply("},
        /* the adjoints of slice and take: their rules run under a gradient's gradient */
        {"slice_scatter", "nb_gradgradcheck("}, {"scatter_add", "nb_gradgradcheck("},
        /* conv's and pooling's gradient ops: run by test_conv's gradgradcheck */
        {"conv2d_input_grad", "nb_conv2d("}, {"conv2d_weight_grad", "nb_conv2d("},
        {"pool_scatter", "nb_max_pool2d("}, {"pool_gather", "nb_max_pool2d("},
        {"avg_pool_grad", "nb_avg_pool2d("},
    };
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        if (!strcmp(op, special[i][0])) return special[i][1];
    snprintf(buf, n, "nb_%s(", op);
    return buf;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

int main(void) {
    char *files[256];
    int nf = 0;
    DIR *d = opendir(NABLA_SOURCE_DIR "/tests");
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d)) && nf < 256;) {
        size_t len = strlen(e->d_name);
        bool c = len > 2 && !strcmp(e->d_name + len - 2, ".c"), h = len > 2 && !strcmp(e->d_name + len - 2, ".h");
        if (!(c && !strncmp(e->d_name, "test_", 5)) && !(h && strcmp(e->d_name, "check.h")))
            continue;
        if (!strcmp(e->d_name, "test_op_coverage.c")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/%s", NABLA_SOURCE_DIR, e->d_name);
        if ((files[nf] = slurp(path))) nf++;
    }
    if (d) closedir(d);
    CHECK(nf > 10);
    for (size_t k = 0; k < sizeof OPS / sizeof *OPS; k++) {
        char buf[64];
        const char *call = call_of(OPS[k], buf, sizeof buf);
        bool found = false;
        for (int i = 0; i < nf && !found; i++) found = strstr(files[i], call) != NULL;
        if (!found) fprintf(stderr, "op %s: no test calls %s\n", OPS[k], call);
        CHECK(found);
    }
    for (int i = 0; i < nf; i++) free(files[i]);
    return check_report("op_coverage");
}
