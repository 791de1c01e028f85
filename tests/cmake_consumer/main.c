/* d/da and d/db of sum(a * b + 3) for a = (1, 2, 3), b = (4, 5, 6): b and a.
   Exits 1 when a gradient is wrong. */
#include <nabla.h>
#include <stdio.h>

int main(void) {
    double va[] = {1, 2, 3}, vb[] = {4, 5, 6};
    nb_tensor *a = nb_vector(va, 3), *b = nb_vector(vb, 3);
    nb_tensor *y = nb_sum(nb_add(nb_prod(a, b), nb_scalar(3.0)));
    if (!y || nb_backward(y, NULL) != 0) {
        fprintf(stderr, "consumer: %s\n", nb_last_error());
        return 1;
    }
    int bad = 0;
    for (int i = 0; i < 3; i++)
        bad += nb_data(nb_grad(a))[i] != vb[i] || nb_data(nb_grad(b))[i] != va[i];
    printf("consumer: nabla %d.%d, y = %g, gradients %s\n", NABLA_VERSION_MAJOR,
           NABLA_VERSION_MINOR, nb_item(y), bad ? "WRONG" : "right");
    nb_cleanup();
    return bad != 0;
}
