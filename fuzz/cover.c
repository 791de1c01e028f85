/*
 * cover: prints, for every input file named on stdin (one path a line), the
 * coverage guards (edges) that running the fuzz target on it reaches:
 *     <path> <guard> <guard> ...
 * Used by `fuzz/run.sh --minimize` to pick a small corpus with the same
 * coverage (libFuzzer's merge data lists only the edges an input adds).
 * Link with the target and the library built with
 * -fsanitize-coverage=trace-pc-guard; this file itself is not instrumented.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop);
void __sanitizer_cov_trace_pc_guard(uint32_t *guard);

static uint32_t nguards;
static uint8_t hit[1 << 20];

void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop) {
    if (start == stop || *start) return;
    for (uint32_t *g = start; g < stop; g++) *g = ++nguards < sizeof hit ? nguards : 0;
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard) { hit[*guard] = 1; }

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    char path[4096];
    static uint8_t buf[1 << 20];
    while (fgets(path, sizeof path, stdin)) {
        path[strcspn(path, "\n")] = 0;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        memset(hit, 0, sizeof hit);
        LLVMFuzzerTestOneInput(buf, n);
        printf("%s", path);
        for (uint32_t g = 1; g <= nguards && g < sizeof hit; g++)
            if (hit[g]) printf(" %u", g);
        printf("\n");
    }
    return 0;
}
