/*
 * nabla — automatic differentiation on computational graphs, in C11.
 *
 * A tensor is a contiguous, row-major array of float64 with up to NB_MAX_DIMS
 * dimensions (0-d scalars included) plus its place in the graph: the operation
 * that produced it, its parents (that operation's inputs), requires_grad, its
 * gradient and its name.  Every operation records the graph as it runs
 * (define-by-run); nb_backward() walks it once, in reverse topological order,
 * and adds the gradient into every leaf that requires one.
 *
 * ---------------------------------------------------------------------------
 * MEMORY MODEL (read this first)
 *
 *  - Every tensor is reference counted.  A child holds a reference to each of
 *    its parents, a tensor owns its gradient and its tangent.
 *  - Every function below that returns a NEW tensor (creation, operations,
 *    nb_detach, nb_jacobian, ...) hands its reference to the thread's current
 *    *scope* (an autorelease pool).  C code therefore never frees intermediate
 *    tensors one by one:
 *
 *        size_t mark = nb_scope_begin();
 *        nb_tensor *loss = ...forward...;       // dozens of tensors
 *        nb_backward(loss, NULL);                // gradients land in the leaves
 *        nb_scope_end(mark);                     // the whole step's graph is gone
 *
 *  - Tensors created before nb_scope_begin() (parameters, data) outlive the
 *    scope.  To keep one tensor made inside a scope, nb_retain() it before
 *    nb_scope_end() and nb_release() it when done (a language binding does
 *    exactly this for every tensor it wraps: one scope per call, one retain).
 *  - With no scope open, tensors go into the thread's root scope:
 *    nb_scope_end(0) or nb_cleanup() releases them.
 *  - Memory freed by the library is cached per thread by size, so a training
 *    loop does not call malloc once it has reached its steady state.
 *    nb_trim() hands the cache back to the system; nb_cleanup() does both.
 *
 * BORROWED POINTERS: nb_shape, nb_data, nb_name, nb_grad and nb_tangent return
 * pointers owned by the tensor; they live as long as the tensor does.
 *
 * ERRORS: nothing here aborts or exits on bad input.  A function that fails
 * returns NULL (or -1, or NaN for nb_item) and sets a thread-local message that
 * starts with the operation's name and shows the shapes in numpy's style:
 *     "add: shapes (3, 1) and (4, 1) cannot be broadcast"
 * Every operation given a NULL argument returns NULL without touching the
 * message, so a whole expression can be checked once, at the end.
 *
 * THREADS: all state (scopes, grad mode, the name counters, the error, the
 * memory cache) is per thread.  Independent graphs can be built and
 * differentiated in several threads at once.  A tensor, and the graph behind
 * it, must be used by one thread at a time; reading the data of a tensor that
 * no thread modifies is safe from any number of threads.
 * ---------------------------------------------------------------------------
 */
#ifndef NABLA_H
#define NABLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(NB_STATIC)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

#define NABLA_VERSION_MAJOR 0
#define NABLA_VERSION_MINOR 1

typedef struct nb_tensor nb_tensor; /* opaque */
#define NB_MAX_DIMS 8

/* ===================================================================== */
/* Creation.  Data is copied; results are leaves with requires_grad = true,
   named "in:<k>".  A shape has ndim (0..8) non-negative sizes; NULL on a bad
   shape or a size whose bytes overflow.                                   */

NB_API nb_tensor *nb_new(const double *data, int ndim, const int64_t *shape); /* row-major */
NB_API nb_tensor *nb_scalar(double value);                  /* 0-d tensor, shape ()   */
NB_API nb_tensor *nb_column(const double *data, int64_t n); /* shape (n, 1): the seed's Tensor([...]) */
NB_API nb_tensor *nb_matrix(const double *data, int64_t rows, int64_t cols);
NB_API nb_tensor *nb_zeros(int ndim, const int64_t *shape);
NB_API nb_tensor *nb_ones(int ndim, const int64_t *shape);
NB_API nb_tensor *nb_randn(int ndim, const int64_t *shape, uint64_t seed); /* N(0,1), reproducible */
NB_API nb_tensor *nb_copy(const nb_tensor *t);              /* deep copy, a new leaf  */
/* Extras. */
NB_API nb_tensor *nb_full(int ndim, const int64_t *shape, double value);
NB_API nb_tensor *nb_rand(int ndim, const int64_t *shape, uint64_t seed);  /* U[0,1), reproducible */
NB_API nb_tensor *nb_vector(const double *data, int64_t n);  /* shape (n,): a 1-d tensor */

/* ===================================================================== */
/* Inspection. */

NB_API int            nb_ndim(const nb_tensor *t);
NB_API const int64_t *nb_shape(const nb_tensor *t);
NB_API int64_t        nb_numel(const nb_tensor *t);
NB_API const double  *nb_data(const nb_tensor *t);          /* row-major, contiguous view */
NB_API double        *nb_data_mut(nb_tensor *t);            /* for parameter updates      */
NB_API double         nb_item(const nb_tensor *t);          /* the value of a 1-element tensor;
                                                               NaN + error otherwise      */
NB_API const char    *nb_name(const nb_tensor *t);          /* "add:0", "in:3", "in_grad" */
NB_API void           nb_set_name(nb_tensor *t, const char *name); /* up to 31 characters */
NB_API bool           nb_requires_grad(const nb_tensor *t);
/* On a leaf: whether backward accumulates a gradient into it.  On an interior
   tensor, false stops gradients from flowing through it (like detach). */
NB_API void           nb_set_requires_grad(nb_tensor *t, bool on);
NB_API bool           nb_is_leaf(const nb_tensor *t);       /* made from values, not by an op */
NB_API const char    *nb_op_name(const nb_tensor *t);       /* "add", "matmul"; "in" for a leaf */
NB_API int            nb_num_parents(const nb_tensor *t);
NB_API nb_tensor     *nb_parent(const nb_tensor *t, int i); /* borrowed; NULL when out of range */
NB_API void           nb_print(const nb_tensor *t);         /* the seed's repr + newline, to stdout */
/* "Tensor(<numpy str of the values>, name=<name>, shape=<python tuple>)".
   Writes at most size bytes (NUL included), returns the full length like
   snprintf, or -1 on error. */
NB_API int            nb_repr(const nb_tensor *t, char *buf, size_t size);
NB_API void           nb_names_reset(void);                 /* the seed's NameManager.reset() */

/* ===================================================================== */
/* Memory: see MEMORY MODEL above. */

NB_API size_t     nb_scope_begin(void);          /* returns a mark for nb_scope_end       */
NB_API void       nb_scope_end(size_t mark);     /* releases the scope's references made
                                                    since mark (0: all of this thread's)  */
NB_API nb_tensor *nb_retain(nb_tensor *t);       /* +1 reference, returns t (NULL-safe)   */
NB_API void       nb_release(nb_tensor *t);      /* -1 reference; freed at 0 (NULL-safe)  */
NB_API void       nb_trim(void);                 /* free this thread's cached blocks      */
NB_API void       nb_cleanup(void);              /* nb_scope_end(0) + nb_trim()           */

typedef struct nb_mem_stats {
    int64_t live_tensors;   /* tensors allocated and not yet freed (this thread)   */
    int64_t live_bytes;     /* bytes of those tensors' blocks                      */
    int64_t peak_bytes;     /* high-water mark of live_bytes                       */
    int64_t cached_bytes;   /* freed blocks kept for reuse                         */
    int64_t system_allocs;  /* calls to the system allocator so far                */
} nb_mem_stats;
NB_API void nb_memory_stats(nb_mem_stats *out);

/* ===================================================================== */
/* Operations: return a new tensor, or NULL with nb_last_error() set.
   Any NULL argument makes the result NULL and keeps the first error.
   Element-wise binary ops broadcast like numpy; the gradient of a broadcast
   operand is summed back to its shape.  With grad enabled and an input that
   requires grad, the output records its parents and requires grad.        */

NB_API nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_prod(nb_tensor *a, nb_tensor *b);     /* element-wise product */
NB_API nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_neg(nb_tensor *a);
NB_API nb_tensor *nb_sin(nb_tensor *a);
NB_API nb_tensor *nb_cos(nb_tensor *a);
NB_API nb_tensor *nb_exp(nb_tensor *a);
NB_API nb_tensor *nb_log(nb_tensor *a);
NB_API nb_tensor *nb_sqrt(nb_tensor *a);
NB_API nb_tensor *nb_square(nb_tensor *a);
NB_API nb_tensor *nb_pow(nb_tensor *a, double exponent);
NB_API nb_tensor *nb_relu(nb_tensor *a);                   /* gradient at 0 is 0 */
NB_API nb_tensor *nb_sigmoid(nb_tensor *a);
NB_API nb_tensor *nb_tanh(nb_tensor *a);
NB_API nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b);  /* element-wise max gate; ties split the gradient in half */
NB_API nb_tensor *nb_sum(nb_tensor *a);                    /* all elements -> 0-d */
NB_API nb_tensor *nb_mean(nb_tensor *a);                   /* all elements -> 0-d */
NB_API nb_tensor *nb_max(nb_tensor *a);                    /* all elements -> 0-d; gradient split among ties */
NB_API nb_tensor *nb_sum_axis(nb_tensor *a, int axis, bool keepdims);  /* axis < 0 counts from the end */
NB_API nb_tensor *nb_mean_axis(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_max_axis(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_softmax(nb_tensor *a, int axis);      /* stable for any finite input */
NB_API nb_tensor *nb_log_softmax(nb_tensor *a, int axis);
NB_API nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);   /* numpy matmul rules, batched too */
NB_API nb_tensor *nb_transpose(nb_tensor *a);              /* swaps the last two axes (identity below 2-d) */
NB_API nb_tensor *nb_reshape(nb_tensor *a, int ndim, const int64_t *shape); /* one size may be -1 */
/* Extras. */
NB_API nb_tensor *nb_scale(nb_tensor *a, double c);        /* c * a */
NB_API nb_tensor *nb_broadcast_to(nb_tensor *a, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_sum_to(nb_tensor *a, int ndim, const int64_t *shape); /* inverse of broadcast_to */

/* ===================================================================== */
/* Reverse mode. */

/* Adds d(sum(seed * t))/dx into the gradient of every leaf x that requires
   grad, in one sweep of the graph.  seed NULL: ones of t's shape; otherwise it
   must have t's shape (a vector-Jacobian product).  The graph is kept, so
   backward can be called again (gradients accumulate).  0 or -1. */
NB_API int        nb_backward(nb_tensor *t, const nb_tensor *seed);
NB_API nb_tensor *nb_grad(const nb_tensor *t);             /* NULL until a backward reaches t (borrowed) */
NB_API void       nb_zero_grad(nb_tensor *t);              /* the gradient becomes zeros */
NB_API nb_tensor *nb_detach(nb_tensor *t);                 /* same values, no graph, a leaf, requires_grad false */
NB_API bool       nb_set_grad_enabled(bool on);            /* false = no_grad mode; returns the previous state */
NB_API bool       nb_is_grad_enabled(void);

/* ===================================================================== */
/* Higher-order derivatives and forward mode. */

/* Gradients of sum_j <seeds[j], outputs[j]> with respect to inputs, written to grads[i]
   (zeros when an input does not influence the outputs). Leaves' stored gradients are not
   touched. seeds == NULL means ones for every output. With create_graph the results are
   recorded in the graph and can be differentiated again, to any order. Returns 0 or -1. */
NB_API int nb_autograd(int n_out, nb_tensor *const *outputs, nb_tensor *const *seeds,
                       int n_in, nb_tensor *const *inputs, nb_tensor **grads, bool create_graph);

/* Forward mode. nb_dual returns a tensor with primal's values that carries `tangent`
   (same shape); every op whose inputs carry tangents propagates them (J·v), also with grad
   disabled, and reverse mode still flows through it to primal. nb_tangent returns the
   tangent of t, or NULL when t carries none. */
NB_API nb_tensor *nb_dual(nb_tensor *primal, nb_tensor *tangent);
NB_API nb_tensor *nb_tangent(const nb_tensor *t);

typedef nb_tensor *(*nb_fn)(nb_tensor *x, void *ctx);
NB_API nb_tensor *nb_jacobian(nb_fn f, nb_tensor *x, void *ctx); /* (numel(f(x)), numel(x)) */
NB_API nb_tensor *nb_hessian(nb_fn f, nb_tensor *x, void *ctx);  /* f(x) has one element; (numel(x), numel(x)) */
/* Hessian-vector product H v of a one-element f at x, by double backward:
   g = grad f(x) with create_graph, then grad of <g, v>.  Shape of x. */
NB_API nb_tensor *nb_hvp(nb_fn f, nb_tensor *x, nb_tensor *v, void *ctx);

/* ===================================================================== */
/* Gradient checking against central finite differences (float64).

   f maps n tensors to one tensor.  The check fixes a random direction u
   (reproducible) and compares, for every element of every input that
   requires grad, the reverse-mode gradient of <u, f(x)> with
   (<u,f(x+eps e_i)> - <u,f(x-eps e_i)>) / (2 eps).  *max_err receives the
   largest |analytic - numeric| / max(1, |numeric|).  gradgradcheck does the
   same for the gradient itself (computed with create_graph), which checks
   every second derivative rule on the way.  Both return 0, or -1 on error. */
typedef nb_tensor *(*nb_multi_fn)(int n, nb_tensor *const *inputs, void *ctx);
NB_API int nb_gradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx,
                        double eps, double *max_err);
NB_API int nb_gradgradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx,
                            double eps, double *max_err);

/* ===================================================================== */
/* Errors. */

NB_API const char *nb_last_error(void);                    /* NULL when none; names the op and shapes */
NB_API void        nb_clear_error(void);

/* ===================================================================== */
/* Graph. */

/* Graphviz DOT of the graph behind t: a box per tensor (name, shape, and for
   tensors of at most 8 elements their data and gradient), an ellipse per
   operation, edges from inputs to the op and from the op to its output.
   Render with `dot -Tpng graph.dot -o graph.png`.  0 or -1. */
NB_API int nb_dot(const nb_tensor *t, FILE *out);

/* ===================================================================== */
/* Threads: element-wise kernels and reductions on large tensors use up to n
   threads (default 1); OpenBLAS, when linked, is set to the same count.
   Returns the previous value. */
NB_API int nb_set_num_threads(int n);

/* ===================================================================== */
/* Training: parameters, layers, losses, optimizers, data (src/nn/).       */
/* @@NN@@ (this section belongs to src/nn; keep it below this line)        */

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
