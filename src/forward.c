/*
 * Forward mode: after every op's forward kernel, nb__finish_slow gives its
 * output the tangent J v from the inputs' tangents (the op's JVP rule), and
 * checks for anomalies.  Duals are made by nb_dual (src/ops/shape.c).
 * Until the first dual exists anywhere, nb__finish skips all of this.
 */
#include "engine.h"

atomic_bool nb__duals_made;

nb_tensor *nb__finish_slow(nb_tensor *out, int nin, nb_tensor *const *in) {
    nb__thread_state *T = nb__thread();
    if (atomic_load_explicit(&nb__duals_made, memory_order_relaxed) && !T->mode.fwd_suspended) {
        nb_tensor *tin[NB__MAX_INPUTS];
        bool any = false;
        for (int i = 0; i < nin; i++) any |= (tin[i] = in[i]->tangent) != NULL;
        if (any) {
            /* a JVP rule's own ops carry no tangents: no forward-over-forward */
            T->mode.fwd_suspended = true;
            nb_tensor *tan = nb__ops[out->op].jvp(out, in, tin);
            T->mode.fwd_suspended = false;
            if (tan && !nb__same_shape(tan, out)) {
                char s1[NB__SHAPE_BUF], s2[NB__SHAPE_BUF];
                tan = nb__err("%s: internal error: tangent of shape %s for an output of shape %s",
                              nb__ops[out->op].name, nb__shape_str(tan->ndim, tan->shape, s1, sizeof s1),
                              nb__shape_str(out->ndim, out->shape, s2, sizeof s2));
            }
            if (!tan) {
                nb__unref(out);
                return NULL;
            }
            out->tangent = nb__ref(tan);
        }
    }
    if (T->mode.anomaly && !T->mode.in_rule && !nb__check_finite(out, "forward")) {
        nb__unref(out);
        return NULL;
    }
    return nb__pool(out);
}
