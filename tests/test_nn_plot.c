/* The SVG writer: structure of the file, coordinates of what is drawn
   (contour lines where they must be), and errors. */
#include "check.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool has(const char *msg, const char *part) { return msg && strstr(msg, part); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

int main(void) {
    char dir[] = "/tmp/nabla_nn_plot_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/p.svg", dir);

    /* a 400 x 300 panel: the plot area is x in [64, 384], y in [30, 254] */
    nb_plot *p = nb_plot_new(1, 400, 300);
    CHECK(p != NULL);
    CHECK(nb_plot_panel(p, 0, 0, 10, 0, 1, "a <title> & more", "x", "y") == 0);
    /* z = x on a 11 x 3 grid over [0, 10] x [0, 1]: the level 5 contour is
       the vertical line x = 5, at pixel 64 + 0.5 * 320 = 224 */
    double z[33];
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 11; i++) z[j * 11 + i] = i;
    CHECK(nb_plot_contour(p, 11, 3, z, 0, 10, 1, "red", 1) == 0);
    CHECK(nb_plot_line(p, 3, (double[]){0, 5, 10}, (double[]){0, NAN, 1}, "blue", 2, 0) == 0);
    CHECK(nb_plot_arrows(p, 1, (double[]){5}, (double[]){0.5}, (double[]){1}, (double[]){0}, 2.0, "black") == 0);
    CHECK(nb_plot_legend(p, "line", "blue") == 0);
    CHECK(nb_plot_save(p, path) == 0);
    char *s = slurp(path);
    CHECK(s != NULL);
    if (s) {
        CHECK(strncmp(s, "<?xml", 5) == 0);
        CHECK(strstr(s, "</svg>\n") && strcmp(s + strlen(s) - 7, "</svg>\n") == 0);
        CHECK(has(s, "a &lt;title&gt; &amp; more"));
        /* the contour: two segments (2 cells high), both at x = 224 from y 254 to 30 */
        const char *c = strstr(s, "stroke=\"red\"");
        CHECK(c != NULL);
        if (c) {
            c = strstr(c, "d=\"");
            double xa, ya, xb, yb, xc, yc, xd, yd;
            CHECK(sscanf(c, "d=\"M%lf %lfL%lf %lfM%lf %lfL%lf %lf", &xa, &ya, &xb, &yb, &xc, &yc, &xd, &yd) == 8);
            CHECK_NEAR(xa, 224, 0.01);
            CHECK_NEAR(xb, 224, 0.01);
            CHECK_NEAR(xc, 224, 0.01);
            CHECK_NEAR(xd, 224, 0.01);
            CHECK_NEAR(fmin(fmin(ya, yb), fmin(yc, yd)), 30, 0.01);
            CHECK_NEAR(fmax(fmax(ya, yb), fmax(yc, yd)), 254, 0.01);
        }
        /* the line: a NaN breaks it, so two moves and no line segment */
        const char *l = strstr(s, "stroke=\"blue\" stroke-width=\"2\"");
        CHECK(l && strstr(l, "d=\"M64.00 254.00M384.00 30.00\""));
        /* the arrow from (5, 0.5) to (7, 0.5): pixels (224, 142) to (288, 142) */
        CHECK(has(s, "M224.00 142.00L288.00 142.00"));
        /* ticks 0, 2, ..., 10 on x */
        CHECK(has(s, ">10</text>") && has(s, ">0.2</text>"));
        CHECK(has(s, ">line</text>"));
        free(s);
    }
    nb_plot_free(p);

    /* cells: runs of one colour become one rectangle; two panels */
    p = nb_plot_new(2, 300, 300);
    CHECK(nb_plot_panel(p, 1, -1, 1, -1, 1, NULL, NULL, NULL) == 0);
    uint32_t rgb[16];
    for (int k = 0; k < 16; k++) rgb[k] = (k % 4) < 2 ? 0xff0000 : 0x00ff00; /* 4 x 4, two runs per row */
    CHECK(nb_plot_cells(p, 4, 4, rgb) == 0);
    double hz[16];
    for (int k = 0; k < 16; k++) hz[k] = k;
    CHECK(nb_plot_heatmap(p, 4, 4, hz, 0, 15) == 0);
    CHECK(nb_plot_save(p, path) == 0);
    s = slurp(path);
    CHECK(s && count(s, "fill=\"#ff0000\"") == 4 && count(s, "fill=\"#00ff00\"") == 4);
    CHECK(s && has(s, "translate(300 0)"));
    char c0[8], c1[8];
    nb_plot_colormap(0, c0);
    nb_plot_colormap(1, c1);
    CHECK_STR(c0, "#440154");
    CHECK_STR(c1, "#fde725");
    CHECK(s && has(s, c0) && has(s, c1));
    free(s);

    /* errors */
    nb_clear_error();
    CHECK(nb_plot_panel(p, 2, 0, 1, 0, 1, NULL, NULL, NULL) == -1 && has(nb_last_error(), "panel 2 out of range"));
    CHECK(nb_plot_panel(p, 0, 1, 1, 0, 1, NULL, NULL, NULL) == -1 && has(nb_last_error(), "bad ranges"));
    CHECK(nb_plot_panel(p, 0, 0, NAN, 0, 1, NULL, NULL, NULL) == -1);
    nb_clear_error();
    CHECK(nb_plot_panel(p, 1, -1, 2, -1, 1, NULL, NULL, NULL) == -1 && has(nb_last_error(), "other ranges"));
    CHECK(nb_plot_panel(p, 1, -1, 1, -1, 1, "again", NULL, NULL) == 0); /* same ranges: re-selected */
    nb_clear_error();
    CHECK(nb_plot_line(p, 1, (double[]){0}, (double[]){0}, "\"/><script>", 1, 0) == -1);
    CHECK(has(nb_last_error(), "bad colour"));
    CHECK(nb_plot_cells(p, 1, 4, rgb) == -1 && has(nb_last_error(), "bad grid"));
    CHECK(nb_plot_contour(p, 4, 4, hz, 0, 15, 0, "black", 1) == -1);
    CHECK(nb_plot_heatmap(p, 4, 4, hz, 1, 1) == -1);
    CHECK(nb_plot_points(p, 1, (double[]){0}, (double[]){0}, "red", 0) == -1);
    nb_clear_error();
    CHECK(nb_plot_save(p, "/nonexistent/dir/p.svg") == -1 && has(nb_last_error(), "cannot open"));
    nb_plot_free(p);
    p = nb_plot_new(1, 300, 300);
    nb_clear_error();
    CHECK(nb_plot_line(p, 1, (double[]){0}, (double[]){0}, "red", 1, 0) == -1 && has(nb_last_error(), "no panel"));
    nb_plot_free(p);
    CHECK(nb_plot_new(0, 300, 300) == NULL && nb_plot_new(1, 10, 300) == NULL);
    nb_plot_free(NULL);

    unlink(path);
    rmdir(dir);
    nb_cleanup();
    return check_report("nn_plot");
}
