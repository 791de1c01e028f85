/*
 * A small SVG writer for the pictures training produces: heat maps and
 * decision regions (coloured cells), contour lines (marching squares),
 * trajectories and curves (polylines), gradient fields (arrows), legends.
 *
 * A figure is a row of panels; each panel keeps the SVG of what was drawn
 * into it (in pixel coordinates) and is framed, ticked and labelled when the
 * figure is saved.
 */
#include "internal.h"
#include "io/io.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- a growable text buffer ------------------------------------------------- */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        locale_t prev = nb__c_locale_begin(); /* "0.75", never "0,75" */
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        nb__c_locale_end(prev);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *s = nb__realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void sb_append(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *t = nb__realloc(b->s, cap);
        if (!t) {
            b->oom = true;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

/* text with &, <, >, " escaped */
static void sb_text(sbuf *b, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *t);
        }
    }
}

/* ---- figures and panels ---------------------------------------------------- */
#define ML 64.0  /* margins: left (tick labels + y label), right, top (title), bottom */
#define MR 16.0
#define MT 30.0
#define MB 46.0
#define MAX_LEGEND 16

typedef struct panel {
    bool set;
    double xmin, xmax, ymin, ymax;
    char title[128], xlabel[64], ylabel[64];
    sbuf body;
    int nleg;
    char leg_label[MAX_LEGEND][48], leg_color[MAX_LEGEND][32];
} panel;

struct nb_plot {
    int n, cur;
    double pw, ph;
    panel *pan;
};

nb_plot *nb_plot_new(int n_panels, double panel_w, double panel_h) {
    if (n_panels < 1 || n_panels > 64 || !(panel_w >= ML + MR + 10) || !(panel_h >= MT + MB + 10) ||
        panel_w > 1e5 || panel_h > 1e5)
        return nb__err("plot: bad figure: %d panels of %g x %g pixels", n_panels, panel_w, panel_h);
    nb_plot *p = nb__malloc(sizeof *p);
    if (!p) return NULL;
    p->pan = nb__malloc((size_t)n_panels * sizeof *p->pan);
    if (!p->pan) {
        nb__free(p);
        return NULL;
    }
    memset(p->pan, 0, (size_t)n_panels * sizeof *p->pan);
    p->n = n_panels;
    p->cur = -1;
    p->pw = panel_w;
    p->ph = panel_h;
    return p;
}

void nb_plot_free(nb_plot *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) nb__free(p->pan[i].body.s);
    nb__free(p->pan);
    nb__free(p);
}

static void copy_str(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src ? src : "");
}

int nb_plot_panel(nb_plot *p, int i, double xmin, double xmax, double ymin, double ymax,
                  const char *title, const char *xlabel, const char *ylabel) {
    if (!p) {
        nb__err("plot: NULL figure");
        return -1;
    }
    if (i < 0 || i >= p->n) {
        nb__err("plot: panel %d out of range (the figure has %d)", i, p->n);
        return -1;
    }
    if (!isfinite(xmin) || !isfinite(xmax) || !isfinite(ymin) || !isfinite(ymax) ||
        !(xmax > xmin) || !(ymax > ymin)) {
        nb__err("plot: bad ranges x [%g, %g], y [%g, %g]", xmin, xmax, ymin, ymax);
        return -1;
    }
    panel *q = &p->pan[i];
    if (q->set && q->body.len &&
        (xmin != q->xmin || xmax != q->xmax || ymin != q->ymin || ymax != q->ymax)) {
        nb__err("plot: panel %d already has drawings in other ranges", i);
        return -1;
    }
    q->set = true;
    q->xmin = xmin;
    q->xmax = xmax;
    q->ymin = ymin;
    q->ymax = ymax;
    copy_str(q->title, sizeof q->title, title);
    copy_str(q->xlabel, sizeof q->xlabel, xlabel);
    copy_str(q->ylabel, sizeof q->ylabel, ylabel);
    p->cur = i;
    return 0;
}

static panel *current(nb_plot *p, const char *who) {
    if (!p) return nb__err("%s: NULL figure", who);
    if (p->cur < 0) return nb__err("%s: no panel selected (call nb_plot_panel first)", who);
    return &p->pan[p->cur];
}

/* data -> pixels, in the panel's own frame (the panel is translated on save) */
static double px(const nb_plot *p, const panel *q, double x) {
    return ML + (x - q->xmin) / (q->xmax - q->xmin) * (p->pw - ML - MR);
}
static double py(const nb_plot *p, const panel *q, double y) {
    return MT + (1.0 - (y - q->ymin) / (q->ymax - q->ymin)) * (p->ph - MT - MB);
}
/* pixel coordinates far outside the view are clamped so the SVG stays sane */
static double clampc(double v) { return v < -1e6 ? -1e6 : v > 1e6 ? 1e6 : v; }

static bool color_ok(const char *c) {
    if (!c || !*c || strlen(c) > 31) return false;
    for (; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '#' || *c == '(' || *c == ')' || *c == ',' || *c == '.' || *c == ' ' || *c == '%'))
            return false;
    return true;
}
#define CHECK_COLOR(who, c)                                        \
    do {                                                           \
        if (!color_ok(c)) {                                        \
            nb__err("%s: bad colour '%s'", who, (c) ? (c) : "(null)"); \
            return -1;                                             \
        }                                                          \
    } while (0)

/* ---- colours -------------------------------------------------------------------- */
void nb_plot_colormap(double t, char out[8]) {
    /* viridis sampled at 9 points, linearly interpolated */
    static const unsigned char cm[9][3] = {
        {68, 1, 84},    {71, 44, 122},  {59, 82, 139},  {44, 114, 142}, {33, 145, 140},
        {39, 173, 129}, {94, 201, 98},  {170, 220, 50}, {253, 231, 37}};
    if (!(t >= 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    double f = t * 8;
    int k = (int)f;
    if (k > 7) k = 7;
    f -= k;
    int c[3];
    for (int j = 0; j < 3; j++) c[j] = (int)lround(cm[k][j] + f * (cm[k + 1][j] - cm[k][j]));
    snprintf(out, 8, "#%02x%02x%02x", c[0], c[1], c[2]);
}

static uint32_t cmap_rgb(double t) {
    char c[8];
    nb_plot_colormap(t, c);
    unsigned v = 0;
    sscanf(c + 1, "%x", &v);
    return v;
}

/* ---- cells --------------------------------------------------------------------------- */
static int grid_ok(const char *who, const panel *q, int nx, int ny, const void *z) {
    if (!q) return -1;
    if (!z || nx < 2 || ny < 2 || nx > 100000 || ny > 100000 || (int64_t)nx * ny > 50000000) {
        nb__err("%s: bad grid %d x %d (each side 2..100000)", who, nx, ny);
        return -1;
    }
    return 0;
}

int nb_plot_cells(nb_plot *p, int nx, int ny, const uint32_t *rgb) {
    panel *q = current(p, "plot_cells");
    if (grid_ok("plot_cells", q, nx, ny, rgb)) return -1;
    double dx = (q->xmax - q->xmin) / (nx - 1), dy = (q->ymax - q->ymin) / (ny - 1);
    sbuf *b = &q->body;
    sb_printf(b, "<g shape-rendering=\"crispEdges\">\n");
    for (int j = 0; j < ny; j++) {
        double y0 = py(p, q, q->ymin + (j + 0.5) * dy), y1 = py(p, q, q->ymin + (j - 0.5) * dy);
        for (int i = 0; i < nx;) {
            uint32_t c = rgb[(size_t)j * nx + i] & 0xffffffu;
            int k = i + 1; /* a run of one colour is one rectangle */
            while (k < nx && (rgb[(size_t)j * nx + k] & 0xffffffu) == c) k++;
            double x0 = px(p, q, q->xmin + (i - 0.5) * dx), x1 = px(p, q, q->xmin + (k - 0.5) * dx);
            /* a quarter pixel of overlap hides the seams between cells */
            sb_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%06x\"/>\n",
                      x0, y0, x1 - x0 + 0.25, y1 - y0 + 0.25, (unsigned)c);
            i = k;
        }
    }
    sb_printf(b, "</g>\n");
    return 0;
}

int nb_plot_heatmap(nb_plot *p, int nx, int ny, const double *z, double zmin, double zmax) {
    panel *q = current(p, "plot_heatmap");
    if (grid_ok("plot_heatmap", q, nx, ny, z)) return -1;
    if (!isfinite(zmin) || !isfinite(zmax) || !(zmax > zmin)) {
        nb__err("plot_heatmap: bad value range [%g, %g]", zmin, zmax);
        return -1;
    }
    size_t n = (size_t)nx * (size_t)ny;
    uint32_t *rgb = nb__malloc(n * sizeof *rgb);
    if (!rgb) return -1;
    /* quantised to 64 shades so runs of a colour merge */
    for (size_t k = 0; k < n; k++) {
        double t = (z[k] - zmin) / (zmax - zmin);
        t = floor((t < 0 ? 0 : t > 1 ? 1 : t) * 63.0 + 0.5) / 63.0;
        rgb[k] = isfinite(z[k]) ? cmap_rgb(t) : 0xffffffu;
    }
    int rc = nb_plot_cells(p, nx, ny, rgb);
    nb__free(rgb);
    return rc;
}

/* ---- contours (marching squares) ------------------------------------------------------- */
int nb_plot_contour(nb_plot *p, int nx, int ny, const double *z, double zmin, double zmax,
                    int n_levels, const char *color, double width) {
    panel *q = current(p, "plot_contour");
    if (grid_ok("plot_contour", q, nx, ny, z)) return -1;
    CHECK_COLOR("plot_contour", color);
    if (n_levels < 1 || n_levels > 1000 || !isfinite(zmin) || !isfinite(zmax) || !(zmax > zmin)) {
        nb__err("plot_contour: bad levels: %d in [%g, %g]", n_levels, zmin, zmax);
        return -1;
    }
    double dx = (q->xmax - q->xmin) / (nx - 1), dy = (q->ymax - q->ymin) / (ny - 1);
    sbuf *b = &q->body;
    for (int l = 1; l <= n_levels; l++) {
        double L = zmin + (zmax - zmin) * l / (n_levels + 1);
        sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" d=\"", color, width);
        for (int j = 0; j + 1 < ny; j++) {
            for (int i = 0; i + 1 < nx; i++) {
                /* corners: 0 (i,j) bottom-left, 1 (i+1,j), 2 (i+1,j+1), 3 (i,j+1) */
                double c[4] = {z[(size_t)j * nx + i], z[(size_t)j * nx + i + 1],
                               z[(size_t)(j + 1) * nx + i + 1], z[(size_t)(j + 1) * nx + i]};
                if (!isfinite(c[0]) || !isfinite(c[1]) || !isfinite(c[2]) || !isfinite(c[3])) continue;
                int cs = (c[0] >= L) | (c[1] >= L) << 1 | (c[2] >= L) << 2 | (c[3] >= L) << 3;
                if (cs == 0 || cs == 15) continue;
                /* crossing points on edges 0 bottom (0-1), 1 right (1-2), 2 top (3-2), 3 left (0-3) */
                static const int ea[4] = {0, 1, 3, 0}, eb[4] = {1, 2, 2, 3};
                double ex[4], ey[4];
                int crossed[4], nc = 0;
                for (int e = 0; e < 4; e++) {
                    double za = c[ea[e]], zb = c[eb[e]];
                    if ((za >= L) == (zb >= L)) continue;
                    double t = (L - za) / (zb - za);
                    /* corner positions in cell units */
                    static const double cx[4] = {0, 1, 1, 0}, cy[4] = {0, 0, 1, 1};
                    double xx = cx[ea[e]] + t * (cx[eb[e]] - cx[ea[e]]);
                    double yy = cy[ea[e]] + t * (cy[eb[e]] - cy[ea[e]]);
                    ex[e] = px(p, q, q->xmin + (i + xx) * dx);
                    ey[e] = py(p, q, q->ymin + (j + yy) * dy);
                    crossed[nc++] = e;
                }
                int seg[2][2], ns = 0;
                if (nc == 2) {
                    seg[0][0] = crossed[0];
                    seg[0][1] = crossed[1];
                    ns = 1;
                } else if (nc == 4) {
                    /* a saddle: the centre value decides which corners connect */
                    bool centre_hi = (c[0] + c[1] + c[2] + c[3]) / 4 >= L;
                    bool c0_hi = c[0] >= L;
                    /* separate the corners that are NOT connected through the centre */
                    if (centre_hi != c0_hi) { /* cut off corners 0 and 2 */
                        seg[0][0] = 0, seg[0][1] = 3, seg[1][0] = 1, seg[1][1] = 2;
                    } else {                  /* cut off corners 1 and 3 */
                        seg[0][0] = 0, seg[0][1] = 1, seg[1][0] = 2, seg[1][1] = 3;
                    }
                    ns = 2;
                }
                for (int s = 0; s < ns; s++)
                    sb_printf(b, "M%.2f %.2fL%.2f %.2f", ex[seg[s][0]], ey[seg[s][0]],
                              ex[seg[s][1]], ey[seg[s][1]]);
            }
        }
        sb_printf(b, "\"/>\n");
    }
    return 0;
}

/* ---- lines, points, arrows ------------------------------------------------------------------ */
int nb_plot_line(nb_plot *p, int64_t n, const double *x, const double *y, const char *color,
                 double width, double marker_r) {
    panel *q = current(p, "plot_line");
    if (!q) return -1;
    CHECK_COLOR("plot_line", color);
    if (n < 0 || (n > 0 && (!x || !y))) {
        nb__err("plot_line: bad points (n %lld)", (long long)n);
        return -1;
    }
    sbuf *b = &q->body;
    sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" stroke-linejoin=\"round\" d=\"",
              color, width);
    bool pen = false;
    for (int64_t k = 0; k < n; k++) {
        if (!isfinite(x[k]) || !isfinite(y[k])) {
            pen = false;
            continue;
        }
        sb_printf(b, "%c%.2f %.2f", pen ? 'L' : 'M', clampc(px(p, q, x[k])), clampc(py(p, q, y[k])));
        pen = true;
    }
    sb_printf(b, "\"/>\n");
    if (marker_r > 0) return nb_plot_points(p, n, x, y, color, marker_r);
    return 0;
}

int nb_plot_points(nb_plot *p, int64_t n, const double *x, const double *y, const char *color,
                   double radius) {
    panel *q = current(p, "plot_points");
    if (!q) return -1;
    CHECK_COLOR("plot_points", color);
    if (n < 0 || (n > 0 && (!x || !y)) || !(radius > 0)) {
        nb__err("plot_points: bad points (n %lld, radius %g)", (long long)n, radius);
        return -1;
    }
    sbuf *b = &q->body;
    sb_printf(b, "<g fill=\"%s\">", color);
    for (int64_t k = 0; k < n; k++) {
        if (!isfinite(x[k]) || !isfinite(y[k])) continue;
        double X = px(p, q, x[k]), Y = py(p, q, y[k]);
        if (fabs(X) > 1e5 || fabs(Y) > 1e5) continue;
        sb_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%g\"/>", X, Y, radius);
    }
    sb_printf(b, "</g>\n");
    return 0;
}

int nb_plot_arrows(nb_plot *p, int64_t n, const double *x, const double *y, const double *dx,
                   const double *dy, double scale, const char *color) {
    panel *q = current(p, "plot_arrows");
    if (!q) return -1;
    CHECK_COLOR("plot_arrows", color);
    if (n < 0 || (n > 0 && (!x || !y || !dx || !dy)) || !isfinite(scale)) {
        nb__err("plot_arrows: bad arguments (n %lld, scale %g)", (long long)n, scale);
        return -1;
    }
    sbuf *b = &q->body;
    sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1\" d=\"", color);
    for (int64_t k = 0; k < n; k++) {
        double x0 = px(p, q, x[k]), y0 = py(p, q, y[k]);
        double x1 = px(p, q, x[k] + scale * dx[k]), y1 = py(p, q, y[k] + scale * dy[k]);
        double ux = x1 - x0, uy = y1 - y0, len = sqrt(ux * ux + uy * uy);
        if (!isfinite(len) || len < 0.5 || len > 1e5) continue;
        ux /= len, uy /= len;
        double h = len * 0.3 < 6 ? len * 0.3 : 6; /* head size */
        /* the head: two strokes at +-25 degrees back from the tip */
        double c = 0.9063, s = 0.4226;
        double ax = x1 - h * (c * ux - s * uy), ay = y1 - h * (s * ux + c * uy);
        double bx = x1 - h * (c * ux + s * uy), by = y1 - h * (-s * ux + c * uy);
        sb_printf(b, "M%.2f %.2fL%.2f %.2fM%.2f %.2fL%.2f %.2fL%.2f %.2f", x0, y0, x1, y1, ax, ay,
                  x1, y1, bx, by);
    }
    sb_printf(b, "\"/>\n");
    return 0;
}

int nb_plot_legend(nb_plot *p, const char *label, const char *color) {
    panel *q = current(p, "plot_legend");
    if (!q) return -1;
    CHECK_COLOR("plot_legend", color);
    if (!label) {
        nb__err("plot_legend: NULL label");
        return -1;
    }
    if (q->nleg == MAX_LEGEND) {
        nb__err("plot_legend: at most %d entries", MAX_LEGEND);
        return -1;
    }
    copy_str(q->leg_label[q->nleg], sizeof q->leg_label[0], label);
    copy_str(q->leg_color[q->nleg], sizeof q->leg_color[0], color);
    q->nleg++;
    return 0;
}

/* ---- saving --------------------------------------------------------------------------------- */
static double nice_step(double range) {
    double raw = range / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void axes(sbuf *b, const nb_plot *p, const panel *q) {
    double x0 = ML, x1 = p->pw - MR, y0 = MT, y1 = p->ph - MB;
    sb_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"black\"/>\n",
              x0, y0, x1 - x0, y1 - y0);
    sb_printf(b, "<g font-family=\"sans-serif\" font-size=\"11\" fill=\"black\">\n");
    double st = nice_step(q->xmax - q->xmin);
    for (double v = ceil(q->xmin / st - 1e-9) * st; v <= q->xmax + st * 1e-9; v += st) {
        double X = px(p, q, v);
        double shown = fabs(v) < st * 1e-9 ? 0.0 : v;
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"black\"/>"
                     "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n",
                  X, y1, X, y1 + 4, X, y1 + 16, shown);
    }
    st = nice_step(q->ymax - q->ymin);
    for (double v = ceil(q->ymin / st - 1e-9) * st; v <= q->ymax + st * 1e-9; v += st) {
        double Y = py(p, q, v);
        double shown = fabs(v) < st * 1e-9 ? 0.0 : v;
        sb_printf(b, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"black\"/>"
                     "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n",
                  x0 - 4, Y, x0, Y, x0 - 6, Y + 4, shown);
    }
    sb_printf(b, "</g>\n<g font-family=\"sans-serif\" fill=\"black\">\n");
    if (q->title[0]) {
        sb_printf(b, "<text x=\"%g\" y=\"%g\" font-size=\"14\" text-anchor=\"middle\">", (x0 + x1) / 2, MT - 10);
        sb_text(b, q->title);
        sb_printf(b, "</text>\n");
    }
    if (q->xlabel[0]) {
        sb_printf(b, "<text x=\"%g\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\">", (x0 + x1) / 2,
                  p->ph - 10);
        sb_text(b, q->xlabel);
        sb_printf(b, "</text>\n");
    }
    if (q->ylabel[0]) {
        sb_printf(b, "<text x=\"14\" y=\"%g\" font-size=\"12\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 14 %g)\">", (y0 + y1) / 2, (y0 + y1) / 2);
        sb_text(b, q->ylabel);
        sb_printf(b, "</text>\n");
    }
    if (q->nleg) {
        double lw = 0;
        for (int k = 0; k < q->nleg; k++) {
            double w = 7.0 * (double)strlen(q->leg_label[k]);
            if (w > lw) lw = w;
        }
        double bx = x1 - lw - 40, by = y0 + 6;
        sb_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%d\" fill=\"white\" "
                     "fill-opacity=\"0.85\" stroke=\"#888\"/>\n", bx, by, lw + 34, 16 * q->nleg + 6);
        for (int k = 0; k < q->nleg; k++) {
            double yy = by + 14 + 16 * k;
            sb_printf(b, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"3\"/>"
                         "<text x=\"%g\" y=\"%g\" font-size=\"11\">", bx + 6, yy - 4, bx + 24, yy - 4,
                      q->leg_color[k], bx + 28, yy);
            sb_text(b, q->leg_label[k]);
            sb_printf(b, "</text>\n");
        }
    }
    sb_printf(b, "</g>\n");
}

int nb_plot_save(const nb_plot *p, const char *path) {
    if (!p || !path) {
        nb__err("plot_save: NULL %s", p ? "path" : "figure");
        return -1;
    }
    sbuf b = {0};
    double W = p->pw * p->n, H = p->ph;
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
                  "viewBox=\"0 0 %g %g\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              W, H, W, H);
    for (int i = 0; i < p->n; i++) {
        const panel *q = &p->pan[i];
        if (!q->set) continue;
        sb_printf(&b, "<g transform=\"translate(%g 0)\">\n<defs><clipPath id=\"clip%d\">"
                      "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\"/></clipPath></defs>\n"
                      "<g clip-path=\"url(#clip%d)\">\n", p->pw * i, i, ML, MT, p->pw - ML - MR,
                  p->ph - MT - MB, i);
        if (q->body.oom) b.oom = true;
        else sb_append(&b, q->body.s, q->body.len);
        sb_printf(&b, "</g>\n");
        axes(&b, p, q);
        sb_printf(&b, "</g>\n");
    }
    sb_printf(&b, "</svg>\n");
    if (b.oom) {
        nb__free(b.s);
        nb__err("plot_save: out of memory");
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        nb__err("plot_save: %s: cannot open for writing (%s)", path, strerror(errno));
        nb__free(b.s);
        return -1;
    }
    bool bad = fwrite(b.s, 1, b.len, f) != b.len;
    if (fclose(f) != 0) bad = true;
    nb__free(b.s);
    if (bad) {
        nb__err("plot_save: %s: write failed", path);
        return -1;
    }
    return 0;
}
