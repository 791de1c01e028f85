/* Numbers in files do not follow the program's locale: after
   setlocale(LC_ALL, "de_DE.UTF-8") (decimal comma) the CSV reader still reads
   "1.5", and nb_repr, the DOT export, the SVG plots and the error messages
   still write "0.75",
   never "0,75".  The locale is made by scripts/deps.sh; without it the test
   says so and checks nothing. */
#include "check.h"
#include "internal.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];
static const char *tmp(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = malloc(1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, f);
    s[n] = 0;
    fclose(f);
    return s;
}

/* a digit, a comma, a digit: a decimal comma */
static bool decimal_comma(const char *s) {
    for (const char *p = s; p && *p && p[1] && p[2]; p++)
        if (p[0] >= '0' && p[0] <= '9' && p[1] == ',' && p[2] >= '0' && p[2] <= '9') return true;
    return false;
}

int main(void) {
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8"};
    const char *got = NULL;
    for (int i = 0; i < 2 && !got; i++) got = setlocale(LC_ALL, names[i]);
    if (!got) {
        printf("(the de_DE.UTF-8 locale is not installed: scripts/deps.sh makes it; skipping)\n");
        return check_report("locale");
    }
    char probe[32];
    snprintf(probe, sizeof probe, "%g", 0.75);
    CHECK(strcmp(probe, "0,75") == 0); /* the locale is really in force */
    snprintf(dir, sizeof dir, "/tmp/nabla_locale_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    size_t mark = nb_scope_begin();

    /* CSV */
    FILE *f = fopen(tmp("a.csv"), "wb");
    CHECK(f && fputs("x;y\n1.5;-2.25e1\n0.75;3\n", f) >= 0);
    if (f) fclose(f);
    nb_tensor *t = nb_csv_read(tmp("a.csv"), ';', true);
    if (!t) fprintf(stderr, "csv_read: %s\n", nb_last_error());
    CHECK(t && nb_data(t)[0] == 1.5 && nb_data(t)[1] == -22.5 && nb_data(t)[2] == 0.75);

    /* printing */
    nb_tensor *v = nb_vector((double[]){0.75, -1.5}, 2);
    char buf[256];
    CHECK(nb_repr(v, buf, sizeof buf) > 0);
    CHECK(strstr(buf, "[ 0.75 -1.5 ]") != NULL);
    CHECK(!decimal_comma(buf));

    /* DOT: data and gradients of small tensors */
    nb_tensor *y = nb_sum(nb_prod(v, nb_scalar(0.5)));
    CHECK(y && nb_backward(y, NULL) == 0);
    f = fopen(tmp("g.dot"), "wb");
    CHECK(f && nb_dot(y, f) == 0);
    if (f) fclose(f);
    char *s = slurp(tmp("g.dot"));
    CHECK(s && strstr(s, "0.75") && strstr(s, "0.375"));
    CHECK(s && !decimal_comma(s));
    free(s);

    /* SVG: coordinates, ticks, radii */
    nb_plot *p = nb_plot_new(1, 401, 301);
    CHECK(p && nb_plot_panel(p, 0, 0, 1.5, -0.25, 0.75, "t", "x", "y") == 0);
    CHECK(nb_plot_line(p, 3, (double[]){0, 0.3, 1.1}, (double[]){0.1, 0.7, -0.2}, "blue", 1.5, 0) == 0);
    CHECK(nb_plot_points(p, 1, (double[]){0.5}, (double[]){0.25}, "red", 2.5) == 0);
    CHECK(nb_plot_save(p, tmp("p.svg")) == 0);
    nb_plot_free(p);
    s = slurp(tmp("p.svg"));
    CHECK(s && strstr(s, "r=\"2.5\"") && strstr(s, "stroke-width=\"1.5\""));
    CHECK(s && !decimal_comma(s));
    free(s);

    /* messages: numbers in them have a point too (clip's bounds, the lr) */
    nb_params *P = nb_params_new();
    CHECK(P && nb_sgd_new(P, -0.5, 0.25, 0.0) == NULL);
    CHECK(nb_last_error() && strstr(nb_last_error(), "-0.5") && !decimal_comma(nb_last_error()));
    nb_params_free(P);
    if (nb_last_error() && decimal_comma(nb_last_error())) fprintf(stderr, "message: %s\n", nb_last_error());
    nb_clear_error();

    /* and the program's own printf still follows its locale */
    snprintf(probe, sizeof probe, "%g", 0.75);
    CHECK(strcmp(probe, "0,75") == 0);
    nb_scope_end(mark);
    remove(tmp("a.csv"));
    remove(tmp("g.dot"));
    remove(tmp("p.svg"));
    rmdir(dir);
    nb_cleanup();
    return check_report("locale");
}
