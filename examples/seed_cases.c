/*
 * The seed's basic test cases (seed 000, "Testes Básicos"), run with nabla and
 * printed the way the notebook prints them: lists are column tensors (n, 1),
 * numbers are 0-d tensors, and every print() is nb_print().  The names'
 * counters restart before each case (the notebook ran its cells in one
 * session, so its counters were further along, e.g. softmax:6).
 *
 * Then writes graph.dot, the graph of seed 002's f = b((a + b)(a - b)) after
 * backward (every box shows the tensor's data and gradient), into the current
 * directory, and renders graph.png when Graphviz's `dot` is on the PATH.
 *
 *     seed_cases
 */
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>

#define PI 3.14159265358979323846

static int failures;

/* backward that reports a failure instead of going on silently */
static void backward(nb_tensor *t) {
    if (nb_backward(t, NULL) != 0) {
        fprintf(stderr, "backward failed: %s\n", nb_last_error() ? nb_last_error() : "?");
        failures++;
    }
}

static void title(const char *s) {
    nb_names_reset();
    printf("\n# %s\n\n", s);
}

int main(void) {
    size_t mark = nb_scope_begin();
    const double a123[] = {1.0, 2.0, 3.0}, b456[] = {4.0, 5.0, 6.0};
    const double a3102[] = {3.0, 1.0, 0.0, 2.0}, v4[] = {-1.0, 0.0, 1.0, 3.0};

    title("add");
    {
        nb_tensor *a = nb_column(a123, 3), *b = nb_column(b456, 3);
        nb_tensor *c = nb_add(a, b);
        nb_tensor *d = nb_add(c, nb_scalar(3.0));
        backward(d);
        printf("# expected: columns of ones\n");
        nb_print(nb_grad(a));
        nb_print(nb_grad(b));
    }

    title("sub");
    {
        nb_tensor *a = nb_column(a123, 3), *b = nb_column(b456, 3);
        nb_tensor *d = nb_sub(nb_sub(a, b), nb_scalar(3.0));
        backward(d);
        printf("# expected: columns of 1 and -1\n");
        nb_print(nb_grad(a));
        nb_print(nb_grad(b));
    }

    title("prod");
    {
        nb_tensor *a = nb_column(a123, 3), *b = nb_column(b456, 3);
        nb_tensor *d = nb_prod(nb_prod(a, b), nb_scalar(3.0));
        backward(d);
        printf("# expected: [12, 15, 18]^T and [3, 6, 9]^T\n");
        nb_print(nb_grad(a));
        nb_print(nb_grad(b));
    }

    title("sin and cos");
    {
        const double av[] = {PI, 0.0, PI / 2};
        nb_tensor *a = nb_column(av, 3);
        nb_tensor *d = nb_sum(nb_add(nb_sin(a), nb_cos(a)));
        backward(d);
        printf("# expected: [-1, 1, -1]^T\n");
        nb_print(nb_grad(a));
    }

    title("sum");
    {
        nb_tensor *a = nb_column(a3102, 4);
        nb_tensor *c = nb_sum(nb_add(nb_prod(a, nb_scalar(3.0)), a));
        backward(c);
        printf("# expected: [4, 4, 4, 4]^T\n");
        nb_print(nb_grad(a));
    }

    title("mean");
    {
        nb_tensor *a = nb_column(a3102, 4);
        backward(nb_mean(a));
        printf("# expected: [0.25, 0.25, 0.25, 0.25]^T\n");
        nb_print(nb_grad(a));
    }

    title("square");
    {
        nb_tensor *a = nb_column(a3102, 4);
        nb_tensor *b = nb_square(a);
        printf("# expected: [9, 1, 0, 4]^T\n");
        nb_print(b);
        backward(b);
        printf("# expected: [6, 2, 0, 4]\n");
        nb_print(nb_grad(a));
    }

    title("matmul");
    {
        const double wv[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        nb_tensor *W = nb_matrix(wv, 3, 3), *v = nb_column(a123, 3);
        nb_tensor *z = nb_matmul(W, v);
        printf("# expected: [14, 32, 50]^T\n");
        nb_print(z);
        backward(z);
        printf("# expected: three rows [1, 2, 3]\n");
        nb_print(nb_grad(W));
        printf("# expected: [12, 15, 18]^T\n");
        nb_print(nb_grad(v));
    }

    title("exp");
    {
        nb_tensor *v = nb_column(a123, 3);
        nb_tensor *w = nb_exp(v);
        printf("# expected: [2.718..., 7.389..., 20.085...]^T\n");
        nb_print(w);
        backward(w);
        nb_print(nb_grad(v));
    }

    title("relu");
    {
        nb_tensor *v = nb_column(v4, 4);
        nb_tensor *w = nb_relu(v);
        printf("# expected: [0, 0, 1, 3]^T\n");
        nb_print(w);
        backward(w);
        printf("# expected: [0, 0, 1, 1]^T\n");
        nb_print(nb_grad(v));
    }

    title("sigmoid");
    {
        nb_tensor *v = nb_column(v4, 4);
        nb_tensor *w = nb_sigmoid(v);
        printf("# expected: [0.268.., 0.5, 0.731.., 0.952..]^T\n");
        nb_print(w);
        backward(w);
        printf("# expected: [0.196..., 0.25, 0.196..., 0.045...]^T\n");
        nb_print(nb_grad(v));
    }

    title("tanh");
    {
        nb_tensor *v = nb_column(v4, 4);
        nb_tensor *w = nb_tanh(v);
        printf("# expected: [-0.76159416, 0., 0.76159416, 0.99505475]^T\n");
        nb_print(w);
        backward(w);
        printf("# expected: [0.41997434, 1., 0.41997434, 0.00986604]^T\n");
        nb_print(nb_grad(v));
    }

    title("softmax");
    {
        const double xv[] = {-3.1, 0.5, 1.0, 2.0}, tv[] = {1, 0, 0, 0};
        nb_tensor *x = nb_column(xv, 4);
        nb_tensor *y = nb_softmax(x, 0);
        printf("# expected: [0.00381737, 0.13970902, 0.23034123, 0.62613238]^T\n");
        nb_print(y);
        /* as an example, the MSE against a target vector */
        nb_tensor *diff = nb_sub(y, nb_column(tv, 4));
        nb_tensor *sq = nb_square(diff);
        nb_tensor *a = nb_mean(sq);
        printf("# expected: 0.36424932\n");
        printf("MSE: ");
        nb_print(a);
        backward(a);
        printf("# expected: [-0.00278095, -0.02243068, -0.02654377, 0.05175539]^T\n");
        nb_print(nb_grad(x));
    }

    /* seed 002's graph, after backward, for Graphviz */
    title("graph of seed 002's f = b((a + b)(a - b)) at a = 1, b = 2");
    {
        nb_tensor *a = nb_scalar(1.0), *b = nb_scalar(2.0);
        nb_set_name(a, "a");
        nb_set_name(b, "b");
        nb_tensor *s = nb_add(a, b), *d = nb_sub(a, b), *p = nb_prod(s, d);
        nb_tensor *f = nb_prod(b, p);
        nb_set_name(f, "f");
        /* keep the interior gradients too, so that every box shows one */
        nb_retain_grad(s);
        nb_retain_grad(d);
        nb_retain_grad(p);
        nb_retain_grad(f);
        backward(f);
        printf("f = %g, df/da = %g (expected 4), df/db = %g (expected -11)\n", nb_item(f),
               nb_item(nb_grad(a)), nb_item(nb_grad(b)));
        FILE *out = fopen("graph.dot", "w");
        if (!out || nb_dot(f, out) != 0) {
            fprintf(stderr, "could not write graph.dot: %s\n",
                    nb_last_error() ? nb_last_error() : "fopen failed");
            failures++;
        } else {
            printf("wrote graph.dot\n");
        }
        if (out) fclose(out);
        if (out && system("command -v dot >/dev/null 2>&1") == 0) {
            if (system("dot -Tpng graph.dot -o graph.png") == 0) printf("wrote graph.png\n");
            else {
                fprintf(stderr, "dot failed to render graph.png\n");
                failures++;
            }
        } else if (out) {
            printf("(Graphviz's dot is not on the PATH: render with "
                   "`dot -Tpng graph.dot -o graph.png`)\n");
        }
    }

    nb_scope_end(mark);
    nb_cleanup();
    return failures ? 1 : 0;
}
