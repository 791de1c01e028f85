/*
 * nabla — automatic differentiation on computational graphs, in C11.
 *
 * A tensor is a contiguous, row-major array of float64 with up to NB_MAX_DIMS
 * dimensions (0-d scalars included) plus its place in the graph: the operation
 * that produced it, its parents (that operation's inputs), requires_grad, its
 * gradient and its name.  Every operation records the graph as it runs
 * (define-by-run); nb_backward() runs it once backwards, each operation after
 * every one that used its result, and adds the gradient into every leaf that
 * requires one.
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
 * Every operation given a NULL argument returns NULL and keeps the first
 * error: the message is left as it is when one is set (the failure that made
 * the NULL), and says "<op>: NULL argument N" otherwise.  So a whole
 * expression can be checked once, at the end.
 *
 * THREADS: all state (scopes, grad mode, the name counters, the error, the
 * memory cache) is per thread.  Independent graphs can be built and
 * differentiated in several threads at once.  A tensor, and the graph behind
 * it, must be used by one thread at a time (also nb_name, which formats the
 * name into the tensor the first time); reading the data of a tensor that no
 * thread modifies is safe from any number of threads.  Reference counts are
 * not atomic, so:
 *   - handing a tensor from thread A to thread B: A nb_retain()s it, ends
 *     every scope of its own that holds it (or nb_cleanup()s), and only then
 *     hands it over; from then on only B touches it and B nb_release()s it;
 *   - when a thread exits, the tensors still in its root scope are released
 *     (as by nb_cleanup) and its cache is freed: a tensor that must outlive
 *     the thread is retained and handed over as above;
 *   - several threads training the same parameters: see nb_alias below. 
 * ---------------------------------------------------------------------------
 */
#ifndef NABLA_H
#define NABLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The build's configuration (NABLA_HAVE_MPI), generated next to this header
   by CMake; without it (nabla.h used alone) MPI is taken as absent. */
#if defined(__has_include)
#if __has_include("nabla_config.h")
#include "nabla_config.h"
#endif
#endif
#ifndef NABLA_HAVE_MPI
#define NABLA_HAVE_MPI 0
#endif

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(NB_STATIC)
#define NB_API __attribute__((visibility("default")))
#else
#define NB_API
#endif

#if defined(__GNUC__)
#define NB_PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define NB_PRINTF_LIKE(f, a)
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
NB_API nb_tensor *nb_column(const double *data, int64_t n); /* shape (n, 1): the assignment's Tensor([...]) */
NB_API nb_tensor *nb_matrix(const double *data, int64_t rows, int64_t cols);
NB_API nb_tensor *nb_zeros(int ndim, const int64_t *shape);
NB_API nb_tensor *nb_ones(int ndim, const int64_t *shape);
NB_API nb_tensor *nb_randn(int ndim, const int64_t *shape, uint64_t seed); /* N(0,1), reproducible */
NB_API nb_tensor *nb_copy(const nb_tensor *t);              /* deep copy, a new leaf  */
/* Extras. */
NB_API nb_tensor *nb_full(int ndim, const int64_t *shape, double value);
NB_API nb_tensor *nb_rand(int ndim, const int64_t *shape, uint64_t seed);  /* U[0,1), reproducible */
NB_API nb_tensor *nb_vector(const double *data, int64_t n);  /* shape (n,): a 1-d tensor */
/* A constant: `value` everywhere, requires_grad false, named "const:<k>"
   like the constants nabla's own rules make (the "in" counter does not
   move).  For the masks and fill values of code built on nabla: a loss, a
   custom op's backward.  NULL on a bad shape, as above, the message
   starting with "const:". */
NB_API nb_tensor *nb_const(int ndim, const int64_t *shape, double value);

/* ===================================================================== */
/* Random numbers: a small reproducible generator (splitmix64), the one
   behind nb_rand, nb_randn, nb_init_tensor, nb_permutation and the
   batcher.  Same seed, same stream, on every platform.  nb_rand(.., seed)
   holds the first numel values of nb_rng_uniform after nb_rng_seed(&r,
   seed), nb_randn those of nb_rng_normal. */
typedef struct nb_rng {
    uint64_t state;
    double spare;      /* Box-Muller's second value */
    int has_spare;
} nb_rng;
NB_API void     nb_rng_seed(nb_rng *r, uint64_t seed);
NB_API uint64_t nb_rng_next(nb_rng *r);                    /* 64 random bits       */
NB_API double   nb_rng_uniform(nb_rng *r);                 /* U[0, 1), 53 bits     */
NB_API double   nb_rng_normal(nb_rng *r);                  /* N(0, 1)              */
NB_API int64_t  nb_rng_below(nb_rng *r, int64_t n);        /* uniform in [0, n), n >= 1; 0 when n < 1 */

/* ===================================================================== */
/* Inspection. */

NB_API int            nb_ndim(const nb_tensor *t);
NB_API const int64_t *nb_shape(const nb_tensor *t);
NB_API int64_t        nb_numel(const nb_tensor *t);
NB_API const double  *nb_data(const nb_tensor *t);          /* row-major, contiguous view */
/* Changes in place.  nb_data_mut hands out t's values to change them, and
   counts as a change of t (a version bump) whether or not you write.  A
   backward or autograd that runs a node recorded before the change, with t
   as an input (or as the node), fails with -1 and a message naming t and
   the node ("backward: w was modified in place after prod:3 used it; its
   gradient would use the new values") instead of differentiating the new
   values, and stores no gradient; record the graph again after the change.
   A change before the recording does not count.  Every call that changes
   an existing tensor's values in place counts the same way:
     nb_data_mut(t), nb_init_tensor(t, ...)       t
     nb_zero_grad(t), nb_accumulate_grad(t, g),   t's gradient (a graph may
       nb_backward adding into a gradient          have read it: nb_grad)
       that exists
     nb_optim_step, nb_mpi_sharded_step           each parameter whose values
                                                   the step moves (not a
                                                   frozen one)
     nb_params_data(p) / nb_params_grad(p)        every parameter / gradient
       (the slabs handed out writable),            of the store
       nb_params_zero_grad(p),
       nb_mpi_broadcast_params(p),
       nb_mpi_allreduce_grad(p)
     nb_params_load, nb_checkpoint_load           every parameter of the store
   A call that fails before writing (a bad argument, a refused file) counts
   as nothing.  Reading counts as nothing: nb_data, nb_grad, nb_item.  Not
   counted: a change made through an alias (nb_alias shares values, not
   versions: see there); nb_gradcheck's perturbations (it restores every
   value bit for bit). */
NB_API double        *nb_data_mut(nb_tensor *t);            /* for parameter updates      */
NB_API double         nb_item(const nb_tensor *t);          /* the value of a 1-element tensor;
                                                               NaN + error otherwise      */
NB_API const char    *nb_name(const nb_tensor *t);          /* "add:0", "in:3", "in_grad" */
NB_API void           nb_set_name(nb_tensor *t, const char *name); /* up to 63 characters (longer: cut) */
NB_API bool           nb_requires_grad(const nb_tensor *t);
/* On a leaf: whether backward accumulates a gradient into it.  On an interior
   tensor, false stops gradients from flowing through it (like detach). */
NB_API void           nb_set_requires_grad(nb_tensor *t, bool on);
NB_API bool           nb_is_leaf(const nb_tensor *t);       /* made from values, not by an op */
NB_API const char    *nb_op_name(const nb_tensor *t);       /* "add", "matmul"; "in" for a leaf */
NB_API int            nb_num_parents(const nb_tensor *t);
NB_API nb_tensor     *nb_parent(const nb_tensor *t, int i); /* borrowed; NULL when out of range */
NB_API void           nb_print(const nb_tensor *t);         /* the assignment's repr + newline, to stdout */
/* "Tensor(<numpy str of the values>, name=<name>, shape=<python tuple>)".
   Writes at most size bytes (NUL included), returns the full length like
   snprintf, or -1 on error. */
NB_API int            nb_repr(const nb_tensor *t, char *buf, size_t size);
NB_API void           nb_names_reset(void);                 /* the assignment's NameManager.reset() */

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
    int64_t tensors_made;   /* tensors created so far (from the cache or the system) */
} nb_mem_stats;
NB_API void nb_memory_stats(nb_mem_stats *out);

/* ===================================================================== */
/* Operations.

   Every operation returns a new tensor (handed to the current scope), or NULL
   with nb_last_error() set.  The contract every one of them keeps:
     - NULL or released arguments: NULL, keeping the first error (or setting
       "<op>: NULL argument N" / "<op>: argument N was already released");
     - a message always starts with the op's name and shows shapes the way
       numpy writes them: "(3, 1)", "(4,)", "()";
     - an allocation failure: NULL + "out of memory" naming the op and shape;
     - with grad enabled and an input that requires grad, the output records
       its inputs and requires grad (else it records nothing);
     - every op has a VJP written in differentiable ops (any order of
       derivative) and a JVP (forward mode).
   Axes: an int in [-ndim, ndim); negative counts from the end; otherwise
   "<op>: axis A is out of range for a tensor of shape S".

   ---- element-wise, binary: nb_add nb_sub nb_prod nb_div nb_maximum
   Shape: numpy broadcasting of a and b (sizes aligned from the right, each
   pair equal or one of them 1; a 0-d tensor broadcasts to anything).
   Error: "<op>: shapes (3, 1) and (4, 1) cannot be broadcast".
   Gradient: of each operand's shape (the broadcast axes summed back).
   maximum: NaN from either side propagates (numpy); the gradient goes to
   the larger input, a tie sends half to each. */
NB_API nb_tensor *nb_add(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_sub(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_prod(nb_tensor *a, nb_tensor *b);     /* element-wise product */
NB_API nb_tensor *nb_div(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_maximum(nb_tensor *a, nb_tensor *b);  /* element-wise max gate; ties split the gradient in half */

/* ---- element-wise, unary: the result has a's shape; no shape error.
   IEEE 754 values outside the domain (log(-1) = NaN, log(0) = -inf).
   relu'(0) = 0 and relu(NaN) = NaN; abs'(0) = 0; pow with exponent 0 has
   derivative 0 everywhere.  exp, sigmoid and tanh are vectorised, within 1,
   2 and 1 ulp of the exact value. */
NB_API nb_tensor *nb_neg(nb_tensor *a);
NB_API nb_tensor *nb_sin(nb_tensor *a);
NB_API nb_tensor *nb_cos(nb_tensor *a);
NB_API nb_tensor *nb_exp(nb_tensor *a);
NB_API nb_tensor *nb_log(nb_tensor *a);
NB_API nb_tensor *nb_sqrt(nb_tensor *a);
NB_API nb_tensor *nb_square(nb_tensor *a);
NB_API nb_tensor *nb_pow(nb_tensor *a, double exponent);
NB_API nb_tensor *nb_relu(nb_tensor *a);                   /* gradient at 0 is 0 */
NB_API nb_tensor *nb_abs(nb_tensor *a);                    /* |a|; gradient sign(a), 0 at 0 */
NB_API nb_tensor *nb_sigmoid(nb_tensor *a);
NB_API nb_tensor *nb_tanh(nb_tensor *a);
NB_API nb_tensor *nb_scale(nb_tensor *a, double c);        /* c * a (linear: its own JVP) */

/* ---- reductions of all elements: the result is 0-d, shape ().
   max of an empty tensor: "max: a tensor of shape (0, 3) has no elements to
   take the max of"; sum of one is 0, mean NaN (0/0).  max's gradient goes to
   the maximal elements, split evenly among ties. */
NB_API nb_tensor *nb_sum(nb_tensor *a);
NB_API nb_tensor *nb_mean(nb_tensor *a);
NB_API nb_tensor *nb_max(nb_tensor *a);

/* ---- reductions along an axis: a's shape without that axis (keepdims: with
   size 1 there).  Errors: the axis (see above), a 0-d input ("axis 0 is out of
   range for a tensor of shape ()"), max along an empty axis. */
NB_API nb_tensor *nb_sum_axis(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_mean_axis(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_max_axis(nb_tensor *a, int axis, bool keepdims);

/* ---- softmax family along an axis: a's shape.  The slice's maximum is
   subtracted before exp, so any finite input gives finite results (+-1000
   included).  Error: the axis.  (The assignment's case: a (4, 1) column, axis 0.) */
NB_API nb_tensor *nb_softmax(nb_tensor *a, int axis);
NB_API nb_tensor *nb_log_softmax(nb_tensor *a, int axis);

/* ---- matmul, numpy's rules:
     (n,k) @ (k,m) -> (n,m)        (k,) @ (k,m) -> (m,)
     (n,k) @ (k,)  -> (n,)         (k,) @ (k,)  -> ()
     (...,n,k) @ (...,k,m) -> (broadcast(...), n, m)
   Errors: a 0-d operand ("matmul: shapes () and (3,): a 0-d operand cannot be
   multiplied as a matrix (use prod)"); "matmul: shapes (2, 3) and (4, 5) are
   not aligned: 3 (last axis of the first) != 4 (second-to-last axis of the
   second)"; batch axes that cannot be broadcast.  OpenBLAS when built with
   it.  matmul_bt: a @ b^T for 2-d a (n, k) and b (m, k), giving (n, m),
   without copying b^T (a Linear layer's x W^T); error unless 2-d with equal
   last sizes: "matmul_bt: shapes (2, 3) and (4, 5): needs (n, k) and (m, k)". */
NB_API nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_matmul_bt(nb_tensor *a, nb_tensor *b);

/* ---- shape ops (linear: each JVP is the op itself, each VJP its adjoint).
   transpose: swaps the last two axes; the identity below 2-d.
   reshape: the same elements in a new shape of 0..8 sizes, one of which may
     be -1 (inferred).  Errors: "reshape: cannot reshape a tensor of shape
     (2, 3) (6 elements) into (4,)", a size below -1, two -1s.
   broadcast_to: a's values repeated to `shape` (numpy's rule); error:
     "broadcast_to: cannot broadcast shape (3,) to (2, 4)".
   sum_to: the adjoint of broadcast_to: sums a over the axes along which
     `shape` was broadcast to a's shape (the engine's "unbroadcast"); error
     when `shape` does not broadcast to a's. */
NB_API nb_tensor *nb_transpose(nb_tensor *a);
NB_API nb_tensor *nb_reshape(nb_tensor *a, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_broadcast_to(nb_tensor *a, int ndim, const int64_t *shape);
NB_API nb_tensor *nb_sum_to(nb_tensor *a, int ndim, const int64_t *shape);

/* ===================================================================== */
/* numpy's operations.  numpy's names, shape rules and broadcasting; an
   axis < 0 counts from the end; errors start with the op's name and show the
   shapes ("where: shapes (2,), (3,) and (4,) cannot be broadcast",
   "min_axis: axis 2 is out of range for a tensor of shape (3, 4)").       */

/* ---- element-wise, selection and comparison (src/ops/elementwise.c) ------
   minimum(a, b): numpy's minimum, broadcasting; NaN on either side gives
     NaN.  Gradient: g to the smaller input, a tie splits it in half (like
     nb_maximum).  Error: shapes that cannot be broadcast.
   clip(a, lo, hi): minimum(maximum(a, lo), hi) as numpy (a NaN in a, lo or
     hi gives NaN; lo > hi gives hi everywhere); a's shape.  Gradient 1 where
     lo <= a <= hi, else 0 (the bounds themselves count as inside).
   where(cond, a, b): cond != 0 ? a : b element by element, the three
     broadcast together (a NaN condition picks a, like numpy's bool(nan)).
     Gradients: a and b get g where they were picked, 0 elsewhere; cond gets
     none (zeros).  Error: shapes that cannot be broadcast together.
   Comparisons eq ne lt le gt ge: 1.0 where a (op) b holds, else 0.0, over
     the broadcast shape, with IEEE semantics (NaN == NaN is false, NaN != x
     true).  Never recorded: the result never requires grad and carries no
     tangent, whatever its inputs.  Error: shapes that cannot be broadcast. */
NB_API nb_tensor *nb_minimum(nb_tensor *a, nb_tensor *b);        /* ties split the gradient in half */
NB_API nb_tensor *nb_clip(nb_tensor *a, double lo, double hi);   /* gradient 1 where lo <= a <= hi, else 0 */
NB_API nb_tensor *nb_where(nb_tensor *cond, nb_tensor *a, nb_tensor *b); /* cond != 0 ? a : b */
NB_API nb_tensor *nb_eq(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_ne(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_lt(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_le(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_gt(nb_tensor *a, nb_tensor *b);
NB_API nb_tensor *nb_ge(nb_tensor *a, nb_tensor *b);

/* ---- reductions (src/ops/reduce.c) ----------------------------------------
   min(a): all elements -> 0-d; min_axis(a, axis, keepdims) along one axis.
     NaN propagates (numpy's min).  Gradient: g split evenly among the
     elements equal to the minimum (like max).  Error: no elements (an empty
     tensor, an empty axis), an axis out of range.
   argmax / argmin(a, axis, keepdims): the index along the axis of the
     largest / smallest element, as a double; the first of ties; a NaN counts
     as the extreme (numpy: the first NaN's index).  Shape: a's without the
     axis (size 1 with keepdims).  Never recorded (no gradient, no tangent).
     Error: an empty axis, an axis out of range (also for a 0-d a).
   logsumexp(a, axis, keepdims): log(sum(exp(a))) along the axis, computed
     as m + log(sum(exp(a - m))) with m the slice's maximum (two passes), so
     finite for any finite input; +inf in a slice gives +inf, NaN gives NaN,
     all -inf (or an empty axis) gives -inf.  Gradient g * exp(a - out), i.e.
     g * softmax(a).  Error: an axis out of range.
   var(a, axis, keepdims, ddof): numpy's var: sum((a - mean)^2) / (n - ddof)
     along the axis, n its length, in two passes (the mean, then the squared
     deviations).  Gradient 2 (a - mean) g / (n - ddof).  Error when
     n - ddof <= 0 (numpy returns inf or NaN with a warning; nabla refuses:
     "var: ddof 1 leaves no degrees of freedom: axis 0 of shape (1, 3) has
     length 1"), and for an axis out of range.  ddof < 0 is allowed.   */
NB_API nb_tensor *nb_min(nb_tensor *a);                          /* all elements -> 0-d; ties split */
NB_API nb_tensor *nb_min_axis(nb_tensor *a, int axis, bool keepdims); /* ties split evenly, like max_axis */
NB_API nb_tensor *nb_argmax(nb_tensor *a, int axis, bool keepdims); /* index as a double, first of ties; no gradient */
NB_API nb_tensor *nb_argmin(nb_tensor *a, int axis, bool keepdims);
NB_API nb_tensor *nb_logsumexp(nb_tensor *a, int axis, bool keepdims); /* stable for any finite input */
NB_API nb_tensor *nb_var(nb_tensor *a, int axis, bool keepdims, int ddof);

/* ---- shape and indexing (src/ops/shape.c, src/ops/index.c) ----------------------------
 * All of these are linear: forward mode applies the op to the tangents, and
 * the gradient is the adjoint (a permute back, a slice placed into zeros, a
 * scatter-add, slices), itself differentiable.
 *
 * nb_permute(a, axes): numpy transpose(a, axes).  axes has a->ndim entries,
 *   each in [-ndim, ndim), together a permutation; the result's axis k is
 *   a's axis axes[k].  axes NULL reverses the axes (numpy transpose(a)).
 *   Errors: "permute: axis 3 is out of range for a tensor of shape (2, 3)",
 *   "permute: axes (0, 0) are not a permutation of the 2 axes of a tensor of
 *   shape (2, 3) (axis 0 repeats)".
 * nb_expand_dims(a, axis): a size-1 axis inserted at `axis` of the result;
 *   axis in [-(ndim+1), ndim+1) (a negative axis counts in the result).
 *   Errors: axis out of range; a already 8-d.
 * nb_squeeze(a, axis): removes `axis`, which must have size 1.  Errors:
 *   "squeeze: axis 1 of a tensor of shape (2, 3) has size 3, not 1".
 * nb_slice(a, axis, start, stop, step): a[..., start:stop:step, ...] along
 *   axis, exactly Python's slice(start, stop, step).indices(size): negative
 *   bounds count from the end, out-of-range bounds are clamped, NB_NONE is an
 *   omitted bound (and, for step, means 1), a negative step walks backwards;
 *   the result may be empty.  Errors: a 0-d tensor (no axis), axis out of
 *   range, "slice: slice step cannot be zero (...)".
 * nb_take(a, idx, n, axis): numpy take(a, idx, axis) for n indices: the
 *   result has a's shape with n in place of a's size along axis, and its
 *   row k is a's row idx[k]; idx[k] in [-size, size), negative counting from
 *   the end.  The gradient scatter-adds, so a repeated index accumulates.
 *   Errors: "take: index 3 is out of bounds for axis 0 with size 3 (...)",
 *   n < 0, idx NULL with n > 0, a 0-d tensor.
 * nb_concat(n, ts, axis): numpy concatenate: n >= 1 tensors of equal ndim
 *   (>= 1: 0-d inputs are an error, as in numpy) whose shapes agree except
 *   along axis; the result's size there is the sum.
 * nb_stack(n, ts, axis): numpy stack: n >= 1 tensors of one shape, joined
 *   along a new axis of size n at `axis` of the result, in [-(ndim+1), ndim+1).
 * concat and stack take any number of inputs (one node holds at most 64;
 * past that they build a tree of nodes with the same values and gradients).
 */
#define NB_NONE INT64_MIN      /* an omitted slice bound: Python's None */
NB_API nb_tensor *nb_permute(nb_tensor *a, const int *axes);     /* numpy transpose(a, axes) */
NB_API nb_tensor *nb_expand_dims(nb_tensor *a, int axis);
NB_API nb_tensor *nb_squeeze(nb_tensor *a, int axis);            /* that axis must have size 1 */
NB_API nb_tensor *nb_slice(nb_tensor *a, int axis, int64_t start, int64_t stop, int64_t step);
NB_API nb_tensor *nb_take(nb_tensor *a, const int64_t *idx, int64_t n, int axis);
NB_API nb_tensor *nb_concat(int n, nb_tensor *const *ts, int axis);   /* 0-d inputs are an error, as in numpy */
NB_API nb_tensor *nb_stack(int n, nb_tensor *const *ts, int axis);

/* ===================================================================== */
/* Convolution and pooling, NCHW, float64 (src/ops/conv.c).

   nb_conv2d: x (N, C, H, W), w (K, C, R, S), b (K,) or NULL; zero padding
   of `padding` on every side; result (N, K, (H + 2p - R) / stride + 1,
   (W + 2p - S) / stride + 1):  y[n,k,i,j] = b[k] +
   sum_{c,r,s} x[n, c, i*stride + r - p, j*stride + s - p] w[k, c, r, s].
   Errors (NULL, message "conv2d: ..." with the shapes): x or w not 4-d,
   channels that differ, b not (K,), stride < 1, padding < 0, a padded input
   smaller than the kernel, and a NULL b while an error set after x and w
   were made is pending (b is then taken for the NULL result of a failed
   expression, as nb_backward does with its seed; nb_clear_error() first to
   mean no bias).  It runs as im2col + GEMM, the batch split over
   nb_set_num_threads() threads, its buffers kept by the thread between calls
   (given back by nb_cleanup).  Its gradients are convolutions themselves
   (differentiable to any order) and run at the same speed.

   nb_max_pool2d / nb_avg_pool2d: windows kernel x kernel every `stride`, no
   padding; result (N, C, (H - kernel) / stride + 1, (W - kernel) / stride + 1).
   max: the window's maximum; the gradient goes to its first maximum (ties:
   the first in row-major order), and so does the forward-mode tangent.
   avg: the window's mean.  Errors ("max_pool2d: ...", "avg_pool2d: ..."): x
   not 4-d, kernel or stride < 1, H or W smaller than the kernel.
   A flatten for a Linear layer after them: nb_reshape(y, 2, (int64_t[]){N, -1}). */
NB_API nb_tensor *nb_conv2d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int padding);
NB_API nb_tensor *nb_max_pool2d(nb_tensor *x, int kernel, int stride); /* no padding; ties: first */
NB_API nb_tensor *nb_avg_pool2d(nb_tensor *x, int kernel, int stride);

/* ===================================================================== */
/* Reverse mode. */

/* Adds d(sum(seed * t))/dx into the gradient of every leaf x that requires
   grad, in one sweep of the graph.  seed NULL: ones of t's shape; otherwise it
   must have t's shape (a vector-Jacobian product).  The graph is kept, so
   backward can be called again (gradients accumulate).  0 or -1.  A NULL seed
   while an error set after t was made is pending is refused (the seed is
   then taken for the NULL result of a failed expression): clear the error
   with nb_clear_error() to mean ones. */
NB_API int        nb_backward(nb_tensor *t, const nb_tensor *seed);
NB_API nb_tensor *nb_grad(const nb_tensor *t);             /* NULL until a backward reaches t (borrowed) */
/* Interior tensors drop their gradient once it has been used; after this
   call t keeps it (and accumulates it like a leaf), e.g. to draw every
   node's gradient with nb_dot (PyTorch's retain_grad). */
NB_API void       nb_retain_grad(nb_tensor *t);
NB_API void       nb_zero_grad(nb_tensor *t);              /* the gradient becomes zeros */
NB_API nb_tensor *nb_detach(nb_tensor *t);                 /* same values, no graph, a leaf, requires_grad false */
NB_API bool       nb_set_grad_enabled(bool on);            /* false = no_grad mode; returns the previous state */
NB_API bool       nb_is_grad_enabled(void);

/* Several threads, one set of parameters (data-parallel training on threads).
   A tensor and its graph belong to one thread at a time, so two threads must
   not record ops on the same parameter W.  Instead, in the thread that owns
   W and before starting the workers, make one alias per worker:
   nb_alias(W) is a new leaf (requires_grad, "in:<k>") that shares W's values
   without copying them and has its own gradient.  Each worker builds its
   graphs and runs nb_backward on its aliases only.  When the workers are
   done (joined), the owning thread adds each alias's gradient into W's with
   nb_accumulate_grad(W, nb_grad(alias)), and releases the aliases (they hold
   a reference to W, so only the owning thread may release them).  W's values
   must not change while a worker uses an alias.  The result equals the
   gradient of one sequential graph over all the workers' data (up to the
   order of the additions).  Tested under ThreadSanitizer. */
NB_API nb_tensor *nb_alias(nb_tensor *t);
/* t's gradient += g (same shape), creating it (zeros + g) if t has none.
   0 or -1. */
NB_API int        nb_accumulate_grad(nb_tensor *t, const nb_tensor *g);

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
/* Custom operations (PyTorch's autograd.Function).

   A user's op is a struct of callbacks and a name.  nb_apply(fn, n, inputs,
   state, free_state) runs fn->forward with recording off, copies its result
   into a new output named "<fn->name>:<k>" (k counts this name's outputs,
   like the NameManager), and records the inputs like any op.  backward()
   later calls fn->backward with the gradient of the output; it stores in
   grad_inputs[i] the gradient of input i (of the input's shape, or of a
   shape the input broadcasts to: the engine sums it back), or leaves it NULL
   for none (zeros).  Under nb_autograd(..., create_graph = true) backward
   runs with recording on, so a backward written with nabla's ops is
   differentiable again.  fn->jvp (optional) gives the output's tangent from
   the inputs' tangents (NULL entries are zero); forward mode through an op
   without one fails with a message naming it.

   Per application the callbacks get a context: tensors saved for backward
   (nb_ctx_save: a reference is held), the user's state pointer (freed by
   free_state exactly once, with the output, or at once when nb_apply fails),
   and which inputs need a gradient.  The nb_function must outlive every
   output made with it (make it static).

   Errors: NULL + message naming the op on a NULL input, a callback that
   returns NULL or -1 (its own message is kept), a gradient of the wrong
   shape ("<name>:<k>: backward returned a gradient of shape (2,) for input 1
   of shape (3,)"), more than 64 inputs or 16 saved tensors.

       static nb_tensor *sq_fwd(nb_ctx *c, int n, nb_tensor *const *x) {
           nb_ctx_save(c, 1, x);                 // save x for backward
           return nb_prod(x[0], x[0]);
       }
       static int sq_bwd(nb_ctx *c, nb_tensor *g, nb_tensor **gx) {
           nb_tensor *x = nb_ctx_saved(c, 0);
           gx[0] = nb_prod(g, nb_scale(x, 2.0)); // d(x^2)/dx = 2x, in ops
           return gx[0] ? 0 : -1;
       }
       static const nb_function square_fn = {"mysquare", sq_fwd, sq_bwd, NULL};
       ...
       nb_tensor *y = nb_apply(&square_fn, 1, &x, NULL, NULL);   // "mysquare:0"
*/
typedef struct nb_ctx nb_ctx;
typedef struct nb_function {
    const char *name;
    nb_tensor *(*forward)(nb_ctx *ctx, int n, nb_tensor *const *inputs);
    int (*backward)(nb_ctx *ctx, nb_tensor *grad_output, nb_tensor **grad_inputs);
    nb_tensor *(*jvp)(nb_ctx *ctx, int n, nb_tensor *const *tangents); /* may be NULL */
} nb_function;
NB_API nb_tensor *nb_apply(const nb_function *fn, int n, nb_tensor *const *inputs,
                           void *state, void (*free_state)(void *state));
NB_API int        nb_ctx_save(nb_ctx *ctx, int n, nb_tensor *const *tensors); /* 0 or -1 */
NB_API int        nb_ctx_num_saved(const nb_ctx *ctx);
NB_API nb_tensor *nb_ctx_saved(const nb_ctx *ctx, int i);      /* borrowed; NULL out of range */
NB_API bool       nb_ctx_needs_grad(const nb_ctx *ctx, int i); /* input i requires a gradient */
NB_API int        nb_ctx_num_inputs(const nb_ctx *ctx);
NB_API void      *nb_ctx_state(const nb_ctx *ctx);
/* The NameManager's new(): returns the next counter k of `op` ("add", or a
   custom op's name) and advances it, as making an output named op:k would.
   -1 on a NULL or empty name, or no memory. */
NB_API int64_t    nb_names_next(const char *op);

/* ===================================================================== */
/* Gradient checking against central finite differences (float64).

   f maps n tensors to one tensor.  The check fixes a random direction u
   (reproducible) and compares, for every element of every input that
   requires grad, the reverse-mode gradient of <u, f(x)> with
   (<u,f(x+eps e_i)> - <u,f(x-eps e_i)>) / (2 eps).  *max_err receives the
   largest |analytic - numeric| / max(1, |numeric|) (NaN if any is NaN).
   gradgradcheck does the same for the gradient itself (computed with
   create_graph), which checks every second derivative rule on the way.
   eps must be positive and finite (1e-6 suits float64; gradgradcheck
   1e-6 to 1e-4).  Both return
     0   the check passed: max_err <= NB_GRADCHECK_TOL;
     1   the check ran and failed: max_err > NB_GRADCHECK_TOL or NaN, and
         nb_last_error() names the input and element with the largest error;
     -1  error (bad arguments, f failed, out of memory), max_err = NaN.
   NB_GRADCHECK_TOL (1e-5) is PyTorch's default absolute tolerance; the
   error of the central difference itself is O(eps^2) + O(1e-16 / eps). */
#define NB_GRADCHECK_TOL 1e-5
typedef nb_tensor *(*nb_multi_fn)(int n, nb_tensor *const *inputs, void *ctx);
NB_API int nb_gradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx,
                        double eps, double *max_err);
NB_API int nb_gradgradcheck(nb_multi_fn f, int n, nb_tensor *const *inputs, void *ctx,
                            double eps, double *max_err);

/* ===================================================================== */
/* Errors. */

NB_API const char *nb_last_error(void);                    /* NULL when none; names the op and shapes */
NB_API void        nb_clear_error(void);

/* Reporting failures the way nabla does, for code built on it (a custom
   op's callbacks, a layer, a loss):
   nb_set_error: sets the thread's message, printf-style (at most 511
     characters are kept), replacing the one that is set: call it where your
     code finds the failure, with a message that starts with your function's
     name.  Where it only passes a failure on (an op returned NULL), leave
     the message alone, so that the first error is kept, as every nabla
     operation does.  A custom op's callback that sets a message and returns
     NULL or -1 keeps it: nb_apply and nb_backward report it unchanged.
   nb_check_args: the check every nabla operation makes of its tensor
     arguments args[0..n): 0 when all are live tensors; -1 when one is NULL,
     keeping the message that is set (the failure that made the NULL) or,
     with none, setting "<who>: NULL argument N"; -1 with "<who>: argument
     N was already released (...)" when one was released.
   nb_shape_str: a shape the way nabla's messages write it (numpy's):
     "(3, 1)", "(4,)", "()", into buf (at most size bytes, NUL included;
     NB_SHAPE_STR_SIZE always suffices); returns buf, or NULL when buf is
     NULL, size is 0, ndim is outside 0..NB_MAX_DIMS or shape is NULL for
     ndim > 0. */
#define NB_SHAPE_STR_SIZE 192
NB_API void        nb_set_error(const char *fmt, ...) NB_PRINTF_LIKE(1, 2);
NB_API int         nb_check_args(const char *who, int n, nb_tensor *const *args);
NB_API const char *nb_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* Anomaly detection (like PyTorch's detect_anomaly), per thread, off by
   default.  When on, the first op whose forward result, or whose gradient in
   a backward sweep, contains a NaN or an infinity fails: it returns NULL (or
   the sweep returns -1) with a message naming the op and the element, e.g.
   "anomaly: forward log:3 produced NaN at element 2".  NaN and inf otherwise
   flow through every op as IEEE 754 says.  Returns the previous setting. */
NB_API bool        nb_set_anomaly_detection(bool on);

/* ===================================================================== */
/* Graph. */

/* Graphviz DOT of the graph behind t: a box per tensor (name, shape, and for
   tensors of at most 8 elements their data and gradient), an ellipse per
   operation, edges from inputs to the op and from the op to its output.
   Render with `dot -Tpng graph.dot -o graph.png`.  0 or -1. */
NB_API int nb_dot(const nb_tensor *t, FILE *out);

/* ===================================================================== */
/* Threads: large element-wise kernels, optimizer steps and matrix products
   use up to n threads (default 1).  nabla's helper threads are a pool
   started on first use and kept (asleep when idle), so a split costs a
   wake-up, not a thread start.  A minibatch-sized GEMM is split into blocks
   over the pool, each a single-threaded OpenBLAS call; a large one uses
   OpenBLAS's own threads.  Small ops always run on the calling thread, and a
   split that finds the pool busy (another thread's) runs inline, with the
   same result.  Returns the previous value. */
NB_API int nb_set_num_threads(int n);
/* The split those kernels use, for loops of your own (an optimizer of
   your own, a custom op's kernel): runs fn(lo, hi, ctx) over [0, n) cut
   into k contiguous chunks, chunk i covering [n*i/k, n*(i+1)/k), on the
   pool and the calling thread, and returns when all are done.  k is at
   most nb_set_num_threads() and at most n / min_per_thread; with k = 1, or
   when the pool is busy (another thread's split, or a call from inside a
   chunk), it is one call fn(0, n, ctx) on the calling thread.  Chunks never
   overlap, so an element-wise loop gives the same result whoever runs it.
   fn runs on helper threads, whose nabla state (scopes, errors, caches) is
   their own: it must compute on memory only, without calling nabla. */
NB_API void nb_parallel_for(int64_t n, int64_t min_per_thread,
                            void (*fn)(int64_t lo, int64_t hi, void *ctx), void *ctx);

/* ===================================================================== */
/* Training: parameters, layers, losses, optimizers, data (src/nn/).       */
/* @@NN@@ (this section belongs to src/nn; keep it below this line)        */
/*
 * The pieces a training loop is made of:
 *
 *     nb_params *P = nb_params_new();                      // outlives every step
 *     nb_mlp *net = nb_mlp_new(P, "mlp", 4, (int64_t[]){784, 256, 128, 10},
 *                              NB_ACT_RELU, NB_INIT_AUTO, seed);
 *     nb_optim *opt = nb_adam_new(P, 1e-3, 0.9, 0.999, 1e-8, 0.0);
 *     for each minibatch (x (B, 784), y (B,) of class indices):
 *         size_t mark = nb_scope_begin();
 *         nb_tensor *loss = nb_cross_entropy(nb_mlp_forward(net, x), y);
 *         nb_backward(loss, NULL);                           // grads land in P's slab
 *         nb_optim_step(opt);                               // one loop over the slab
 *         nb_params_zero_grad(P);
 *         nb_scope_end(mark);
 *     nb_params_save(P, "model.nbp");
 *     nb_optim_free(opt); nb_mlp_free(net); nb_params_free(P);
 *
 * Objects here (nb_params, nb_mlp, nb_optim, nb_batcher, nb_plot) are plain
 * heap objects with a _new and a _free (NULL-safe); they are not tensors and
 * never go into a scope.  Functions that return tensors follow the MEMORY
 * MODEL above (the new tensor goes into the current scope).  Errors: NULL or
 * -1 and nb_last_error(), never abort.
 */

/* (Random numbers, nb_rng: above, after creation.) */

/* ---- parameters ------------------------------------------------------------
   A parameter store keeps every parameter's values in ONE contiguous slab of
   doubles and their gradients in a second slab of the same layout, so an
   optimizer step is one loop and saving is one write.  Each parameter is a
   leaf tensor (requires_grad true) whose data points into the value slab and
   whose gradient (nb_grad) is a tensor pointing into the gradient slab:
   nb_backward accumulates into it in place.  The tensors belong to the store:
   borrow them, never nb_release them (nb_retain one to keep it past
   nb_params_free; its data then stays valid).  Adding a parameter may move
   the slabs (the tensors are updated): take nb_params_data() pointers again
   after adding. */
typedef struct nb_params nb_params;

NB_API nb_params  *nb_params_new(void);
NB_API void        nb_params_free(nb_params *p);           /* NULL-safe */
/* A new parameter of `shape`, zero-filled, named `name` (1..63 characters,
   unique in the store).  Borrowed; NULL + error on a bad shape, an empty,
   long or duplicate name, or no memory (the store is then unchanged). */
NB_API nb_tensor  *nb_params_add(nb_params *p, const char *name, int ndim, const int64_t *shape);
NB_API int64_t     nb_params_count(const nb_params *p);    /* number of parameter tensors */
NB_API int64_t     nb_params_numel(const nb_params *p);    /* total number of values      */
NB_API nb_tensor  *nb_params_get(const nb_params *p, int64_t i);   /* borrowed; NULL out of range */
NB_API const char *nb_params_name(const nb_params *p, int64_t i);  /* borrowed; NULL out of range */
NB_API nb_tensor  *nb_params_find(const nb_params *p, const char *name); /* NULL when absent (no error set) */
/* The slabs, writable: each call counts as a change in place of every
   parameter (nb_params_data) or every gradient (nb_params_grad), like
   nb_data_mut (see there); read one parameter with nb_data(nb_params_get). */
NB_API double     *nb_params_data(nb_params *p);           /* the value slab, numel doubles    */
NB_API double     *nb_params_grad(nb_params *p);           /* the gradient slab, same layout   */
NB_API void        nb_params_zero_grad(nb_params *p);      /* gradient slab := 0 (a change in place) */
/* One line per parameter (name, shape, count) and a total, to `out`. */
NB_API void        nb_params_summary(const nb_params *p, FILE *out);

/* Saving and loading.  The file format (version 1; integers little-endian):
 *     offset 0  8 bytes   magic "NBPARAMS"
 *               uint32    version = 1
 *               uint32    count: number of tensors
 *     count times:
 *               uint32    name length L (1..63), then L bytes of name (no NUL)
 *               uint32    ndim (0..8), then ndim int64 sizes
 *     then      the values of every tensor, in the order above, row-major,
 *               IEEE-754 float64 little-endian
 *     last      uint32    CRC-32 (IEEE 802.3, as zlib's crc32) of all bytes before it
 * nb_params_load reads the whole file (a regular file: see "data" below for
 * what is refused) and checks everything (magic, version,
 * size, checksum, that the file holds exactly the store's names, each with the
 * store's shape, in any order) BEFORE copying the values in: on any error it
 * returns -1 with a message naming the file and the problem, and the store is
 * unchanged.  nb_params_save replaces path atomically and durably: it writes a
 * temporary file of a unique name in path's folder (created with O_EXCL |
 * O_NOFOLLOW: never a symbolic link, never another writer's file), fsyncs it,
 * renames it over path and fsyncs the folder.  So a reader (or a crash, or a
 * kill at any moment) sees the old file or the new one, never a mix; saves
 * running at once to one path each succeed and the last one wins; a failed
 * save leaves an earlier file intact.  A regular file at path keeps its
 * permission bits; a symbolic link, FIFO, device or folder at path is refused
 * (-1), never replaced.  A process killed mid-save may leave a hidden
 * ".<name>.<pid>.<random>.tmp" file in the folder.  Gradients and optimizer
 * state are not saved (see nb_checkpoint_save).  0 or -1. */
NB_API int nb_params_save(const nb_params *p, const char *path);
NB_API int nb_params_load(nb_params *p, const char *path);

/* ---- initialisation ---------------------------------------------------------
   Fills t's values in place (t need not belong to a store; a change in
   place, see nb_data_mut).  fan_in and
   fan_out are those of the layer (Linear: in and out features).  Seeded:
   the same seed gives the same values.  0, or -1 on a NULL tensor or a
   non-positive fan (for the kinds that use it). */
typedef enum nb_init_kind {
    NB_INIT_AUTO = 0,        /* nb_mlp: He normal with ReLU, Xavier uniform otherwise */
    NB_INIT_ZEROS,
    NB_INIT_XAVIER_UNIFORM,  /* U(-a, a), a = sqrt(6 / (fan_in + fan_out))  (Glorot) */
    NB_INIT_XAVIER_NORMAL,   /* N(0, 2 / (fan_in + fan_out))                         */
    NB_INIT_HE_UNIFORM,      /* U(-a, a), a = sqrt(6 / fan_in)             (Kaiming) */
    NB_INIT_HE_NORMAL,       /* N(0, 2 / fan_in)                                     */
} nb_init_kind;
NB_API int nb_init_tensor(nb_tensor *t, nb_init_kind kind, int64_t fan_in, int64_t fan_out,
                          uint64_t seed);

/* ---- layers -----------------------------------------------------------------
   Linear: y = x Wᵀ + b, x (..., in) -> y (..., out), W (out, in) and b (out,)
   stored in a nb_params as "<name>.weight" and "<name>.bias".  The struct
   only borrows its tensors (the store owns them): there is nothing to free. */
typedef enum nb_activation {
    NB_ACT_NONE = 0, NB_ACT_RELU, NB_ACT_TANH, NB_ACT_SIGMOID
} nb_activation;
NB_API nb_tensor *nb_activate(nb_tensor *x, nb_activation act);  /* the identity for NB_ACT_NONE */

typedef struct nb_linear {
    nb_tensor *weight;       /* (out, in), borrowed from the store */
    nb_tensor *bias;         /* (out,), or NULL without bias       */
    int64_t in, out;
} nb_linear;
/* Adds the layer's parameters to p: W initialised by `init` (NB_INIT_AUTO
   means Xavier uniform) with fan_in = in, fan_out = out; b zeros.
   0, or -1 + error (bad sizes, duplicate names, no memory; p unchanged). */
NB_API int nb_linear_init(nb_linear *l, nb_params *p, const char *name, int64_t in,
                          int64_t out, bool bias, nb_init_kind init, uint64_t seed);
NB_API nb_tensor *nb_linear_forward(const nb_linear *l, nb_tensor *x);

/* A multilayer perceptron sizes[0] -> sizes[1] -> ... -> sizes[n-1]: n-1
   Linear layers named "<name>.<i>" (i from 0), `act` after every layer but
   the last (which gives raw outputs: logits).  Layer i is seeded with
   seed + i.  NULL + error on fewer than 2 sizes, a size < 1, or no memory
   (the store is then unchanged). */
typedef struct nb_mlp nb_mlp;
NB_API nb_mlp    *nb_mlp_new(nb_params *p, const char *name, int n_sizes, const int64_t *sizes,
                             nb_activation act, nb_init_kind init, uint64_t seed);
NB_API void       nb_mlp_free(nb_mlp *m);                  /* NULL-safe; the parameters stay in p */
NB_API nb_tensor *nb_mlp_forward(const nb_mlp *m, nb_tensor *x);  /* (B, sizes[0]) -> (B, sizes[n-1]) */
NB_API int        nb_mlp_num_layers(const nb_mlp *m);
NB_API const nb_linear *nb_mlp_layer(const nb_mlp *m, int i);    /* NULL out of range */

/* ---- losses -------------------------------------------------------------------
   Each returns a 0-d tensor, the mean over the batch, built from
   differentiable ops (so it can be differentiated twice). */
/* mean((pred - target)^2) over all elements; shapes must be equal (no
   broadcasting: (N, 1) against (N,) is an error, not an (N, N) loss). */
NB_API nb_tensor *nb_mse_loss(nb_tensor *pred, nb_tensor *target);
/* Cross-entropy from logits (B, C) and labels: B class indices in [0, C)
   stored as doubles, shape (B,) or (B, 1).  -(1/B) sum_i log_softmax(z_i)[y_i]:
   finite for any finite logits, and with -inf logits of wrong classes, as
   long as the exact loss is below the largest double (it is +inf when a
   label's logit is -inf or about 1.8e308 below the row's largest); the
   gradient (softmax - onehot) / B.  Error on a label that is not an integer
   in range (names the row). */
NB_API nb_tensor *nb_cross_entropy(nb_tensor *logits, nb_tensor *labels);
/* Binary cross-entropy from logits z and targets y in [0, 1] of z's shape:
   mean(max(z, 0) - z y + log(1 + exp(-|z|))), stable for any z, gradient
   (sigmoid(z) - y) / N (exact at z = 0 too). */
NB_API nb_tensor *nb_bce_with_logits(nb_tensor *logits, nb_tensor *targets);
/* Row-wise argmax of a (B, C) tensor into out[B] (first maximum wins). 0 or -1. */
NB_API int        nb_argmax_rows(const nb_tensor *scores, int64_t *out);
/* Fraction of rows of scores (B, C) whose argmax equals the label; NaN + error on bad shapes. */
NB_API double     nb_accuracy(const nb_tensor *scores, const nb_tensor *labels);

/* ---- optimizers ------------------------------------------------------------------
   An optimizer updates every value of a store from its gradient slab, in one
   loop, and keeps its state (momentum, moments) in slabs of the same layout;
   parameters added to the store later get zero state.  It does not zero the
   gradients: call nb_params_zero_grad after each step.
   SGD (as PyTorch): g = grad + wd p;  v = momentum v + g;  p -= lr v
     (momentum 0: p -= lr g).
   Adam (Kingma & Ba, with bias correction; wd as L2 added to the gradient):
     g = grad + wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps),  t = 1, 2, ...
   _new: NULL + error on a NULL store, lr <= 0, or a coefficient out of
   range (momentum, b1, b2 in [0, 1), eps > 0, wd >= 0).  The store must
   outlive the optimizer.  Steps use up to nb_set_num_threads() threads.
   A parameter frozen with nb_set_requires_grad(t, false) is skipped by every
   step: its values and its state (momentum, moments) do not move, whatever
   its gradient, momentum or weight decay; it resumes (with its kept state)
   when requires_grad is set again.  The step count t is the optimizer's. */
typedef struct nb_optim nb_optim;
NB_API nb_optim *nb_sgd_new(nb_params *p, double lr, double momentum, double weight_decay);
NB_API nb_optim *nb_adam_new(nb_params *p, double lr, double beta1, double beta2, double eps,
                             double weight_decay);
NB_API int       nb_optim_step(nb_optim *o);               /* 0 or -1; changes values in place (nb_data_mut) */
/* Schedules.  lr must be > 0 and finite: otherwise (0, negative, NaN, inf)
   the learning rate is NOT changed and the error "optim_set_lr: ..." is set
   (check nb_optim_lr(o) == lr, or nb_last_error()). */
NB_API void      nb_optim_set_lr(nb_optim *o, double lr);
NB_API double    nb_optim_lr(const nb_optim *o);
NB_API int64_t   nb_optim_steps(const nb_optim *o);        /* steps taken so far */
NB_API void      nb_optim_free(nb_optim *o);               /* NULL-safe */

/* ---- data ---------------------------------------------------------------------------
   Readers return a new tensor (into the current scope) with requires_grad
   false.  Bad files never crash: NULL + an error naming the reader, the file
   and what is wrong (and where), out of memory included; control characters
   in messages are escaped (\r, \x01).  Limits, for these readers and
   nb_params_load:
     - regular files only: a FIFO, a device (/dev/zero), a directory or a
       socket is refused before anything is read (opening never blocks);
     - a file is read into memory whole (CSV, parameter files) or in the
       size its header declares (IDX), so memory is bounded by the file;
     - numbers are read in the "C" locale: "1.5" whatever setlocale() says
       (and nb_repr, nb_dot and the SVG plots write them so too). */
/* IDX (the MNIST format): magic 00 00 <type> <ndim>, ndim big-endian uint32
   sizes, then the big-endian values (type 0x08 ubyte, 0x09 byte, 0x0B int16,
   0x0C int32, 0x0D float32, 0x0E float64).  Gzip-compressed files (.gz) are
   read through zlib (when nabla is built with it).  The result has the
   file's shape and its values converted to double (ubyte 0..255 as is).
   Limits: at most 2^40 elements; the file must hold exactly the declared
   bytes (a plain file is checked from its size before reading; a gzip
   stream is inflated to the declared size plus one byte and no further, so
   a small file that inflates to gigabytes costs only what it declares). */
NB_API nb_tensor *nb_idx_read(const char *path);
/* A CSV file of numbers: one row per line, fields separated by `delim`
   (',' ';' '\t' ...), blank lines skipped, optionally a header line skipped,
   LF or CRLF line ends, a UTF-8 byte-order mark at the start skipped, fields
   optionally in double quotes.  Every row must have the same number of
   fields.  Result (rows, cols).  Refused, naming file, line and field: a
   field that is not a number (strtod's syntax in the "C" locale; "inf" and
   "nan" are numbers), one that contains a NUL byte, one out of range
   ("1e400": larger than the largest double; underflow to 0 or a subnormal
   is accepted), one longer than 127 characters.  Limit: 1 GiB of text
   (after decompression; a larger plain file is refused from its size). */
NB_API nb_tensor *nb_csv_read(const char *path, char delim, bool header);
/* The rows idx[0..n) of x (first axis), as a new tensor (n, ...) with
   requires_grad false: a minibatch.  NULL + error on an index out of range. */
NB_API nb_tensor *nb_gather_rows(const nb_tensor *x, const int64_t *idx, int64_t n);
/* out[0..n) := a uniformly random permutation of 0..n-1 (Fisher-Yates), seeded. */
NB_API void       nb_permutation(int64_t n, uint64_t seed, int64_t *out);

/* Minibatches of indices into a data set of n examples: each epoch is a new
   permutation (seeded by seed and the epoch number; no shuffle: in order)
   cut into batches of batch_size (the last one smaller, unless drop_last). */
typedef struct nb_batcher nb_batcher;
NB_API nb_batcher *nb_batcher_new(int64_t n, int64_t batch_size, bool shuffle, bool drop_last,
                                  uint64_t seed);
/* Points *idx at the next batch's indices (borrowed, valid until the next
   call) and returns its size; returns 0 at the end of an epoch, after which
   the next call starts the next epoch. */
NB_API int64_t     nb_batcher_next(nb_batcher *b, const int64_t **idx);
NB_API int64_t     nb_batcher_num_batches(const nb_batcher *b);  /* per epoch */
NB_API int64_t     nb_batcher_epoch(const nb_batcher *b);        /* epochs completed so far */
NB_API void        nb_batcher_free(nb_batcher *b);               /* NULL-safe */
/* Puts b where it is after `epoch` completed epochs and `batch` batches of
   the next one (0 <= batch <= batches per epoch): the next nb_batcher_next
   returns what an uninterrupted batcher would (resuming from a checkpoint).
   0, or -1 + error. */
NB_API int         nb_batcher_seek(nb_batcher *b, int64_t epoch, int64_t batch);
/* Rank `rank`'s share of n items split among `size` ranks: contiguous, the
   first n % size shares one item larger, together exactly 0..n-1 once.
   Returns the count and puts the first item's index in *lo; -1 + error on
   n < 0 or rank outside [0, size).  Data parallelism: each rank takes
   idx[lo .. lo + count) of every global minibatch idx[0..k). */
NB_API int64_t     nb_shard(int64_t n, int rank, int size, int64_t *lo);

/* ---- checkpoints ---------------------------------------------------------------------
   One file with everything a training run needs to continue where it was:
   the parameters, the optimizer's state (lr, step count, SGD's momentum or
   Adam's moments), the run's position and random state (nb_train_state),
   user values (metrics so far, a schedule's state, ...) and the run's
   configuration, a text of "key=value" lines chosen by the caller.
   nb_checkpoint_save writes it atomically and durably, as nb_params_save does
   (unique temporary file, O_EXCL | O_NOFOLLOW, fsync, rename, fsync of the
   folder, permission bits kept, non-regular files refused): a kill at any
   moment leaves the previous checkpoint or the new one, never a broken one.
   o and s may be NULL (not saved).
   nb_checkpoint_load checks everything before changing anything: magic,
   version, sizes, CRC-32; that the configuration is the caller's (otherwise
   "checkpoint_load: <path>: written by another configuration: batch is '256'
   in the checkpoint, '128' now"); that the store has the file's names and
   shapes; that the optimizer is of the same kind with the same coefficients
   (momentum, betas, eps, weight decay; lr is restored); that the file has
   state and optimizer exactly when s and o are given, and s->n_user values.
   Then it sets the parameters, the optimizer (lr, t, state) and *s (but
   s->user and s->n_user themselves: the values are copied into s->user).
   On any error: -1 with a message naming the file, nothing changed.
   Format (version 1, little-endian): "NBCHECKP", u32 version, u32 flags
   (1: optimizer, 2: state), u32 config length + bytes; [state: i64 epoch,
   batch, step; u64 rng.state, f64 rng.spare, u32 rng.has_spare, u32 0, u64
   n_user + n_user f64]; [optimizer: u32 kind (1 SGD, 2 Adam), u32 slabs,
   f64 lr, momentum, beta1, beta2, eps, wd, i64 t, i64 n, then slabs x n
   f64]; u64 length + a parameter file image (nb_params_save's format);
   u32 CRC-32 of all bytes before it. */
typedef struct nb_train_state {
    int64_t epoch;     /* epochs completed                                   */
    int64_t batch;     /* batches done in the current epoch                  */
    int64_t step;      /* optimizer steps in total                           */
    nb_rng  rng;       /* the run's random generator                          */
    double *user;      /* n_user values saved as they are (caller's memory)  */
    int64_t n_user;
} nb_train_state;
NB_API int nb_checkpoint_save(const char *path, const char *config, const nb_params *p,
                              const nb_optim *o, const nb_train_state *s);
NB_API int nb_checkpoint_load(const char *path, const char *config, nb_params *p, nb_optim *o,
                              nb_train_state *s);

/* ---- pictures (SVG, written by nabla itself) -------------------------------------
   A figure of n_panels panels side by side, each panel_w x panel_h pixels.
   nb_plot_panel selects a panel and sets its data ranges, title and axis
   labels (text may be NULL); every later drawing call draws into it, in data
   coordinates (clipped to the panel).  Selecting a panel again keeps what was
   drawn in it (its ranges cannot change once something is drawn).  Colours are SVG colours ("#1f77b4",
   "black").  Drawing calls return 0, or -1 on bad arguments. */
typedef struct nb_plot nb_plot;
NB_API nb_plot *nb_plot_new(int n_panels, double panel_w, double panel_h);
NB_API int  nb_plot_panel(nb_plot *p, int i, double xmin, double xmax, double ymin, double ymax,
                          const char *title, const char *xlabel, const char *ylabel);
/* Colour map (viridis-like) of t in [0, 1] (clamped) as "#rrggbb" into out[8]. */
NB_API void nb_plot_colormap(double t, char out[8]);
/* The value grid z[j * nx + i] at x = xmin + i (xmax-xmin)/(nx-1), y likewise
   (row j = 0 at ymin), as coloured cells: z mapped linearly from [zmin, zmax]
   through the colour map. */
NB_API int  nb_plot_heatmap(nb_plot *p, int nx, int ny, const double *z, double zmin, double zmax);
/* Cells with explicit colours rgb[j * nx + i] = 0xRRGGBB, same grid as above. */
NB_API int  nb_plot_cells(nb_plot *p, int nx, int ny, const uint32_t *rgb);
/* Contour lines of the same grid at n_levels levels evenly spaced strictly
   inside [zmin, zmax] (marching squares). */
NB_API int  nb_plot_contour(nb_plot *p, int nx, int ny, const double *z, double zmin, double zmax,
                            int n_levels, const char *color, double width);
/* A polyline through (x[k], y[k]); non-finite points break the line.
   marker_r > 0 also draws a dot of that radius (pixels) at every point. */
NB_API int  nb_plot_line(nb_plot *p, int64_t n, const double *x, const double *y,
                         const char *color, double width, double marker_r);
NB_API int  nb_plot_points(nb_plot *p, int64_t n, const double *x, const double *y,
                           const char *color, double radius);
/* Arrows from (x, y) to (x + scale dx, y + scale dy), in data units. */
NB_API int  nb_plot_arrows(nb_plot *p, int64_t n, const double *x, const double *y,
                           const double *dx, const double *dy, double scale, const char *color);
NB_API int  nb_plot_legend(nb_plot *p, const char *label, const char *color);  /* current panel */
NB_API int  nb_plot_save(const nb_plot *p, const char *path);   /* 0 or -1 + error */
NB_API void nb_plot_free(nb_plot *p);                           /* NULL-safe */

/* ---- data parallelism over MPI (NABLA_HAVE_MPI) ------------------------------------
   Built when CMake finds MPI (-DNABLA_MPI=AUTO, the default; ON requires it,
   OFF leaves it out); only this part of the library uses MPI.  The recipe
   (docs/DISTRIBUTED.md): every rank builds the same model; rank 0's
   parameters are broadcast; each step, every rank takes its nb_shard of the
   global minibatch, runs forward and backward on it, and the gradient slabs
   are all-reduced (one MPI_Allreduce of the whole slab), so every rank
   takes the same optimizer step on the same gradient and the parameters stay
   identical on all ranks.  The functions use a private duplicate of
   MPI_COMM_WORLD whose errors return (MPI_ERRORS_RETURN): an MPI failure is
   -1 + "mpi_<function>: ..." (MPI's own message), never an abort.  Every
   rank must make the same calls in the same order (they are collective). */
#if NABLA_HAVE_MPI
/* MPI_Init (with MPI_THREAD_FUNNELED) unless MPI is already initialised
   (then the caller's MPI is used); argc/argv may be NULL.  0 or -1. */
NB_API int nb_mpi_init(int *argc, char ***argv);
/* MPI_Finalize if nb_mpi_init initialised MPI (else only frees nabla's
   communicator).  0 or -1. */
NB_API int nb_mpi_finalize(void);
NB_API int nb_mpi_rank(void);   /* this process's rank; 0 before nb_mpi_init */
NB_API int nb_mpi_size(void);   /* number of ranks; 1 before nb_mpi_init     */
/* Copies rank `root`'s value slab to every rank.  The stores must have the
   same number of values on every rank (checked first: -1 + a message giving
   both counts).  0 or -1. */
NB_API int nb_mpi_broadcast_params(nb_params *p, int root);
/* grad := sum over ranks r of weight_r * grad_r, on every rank, in one
   MPI_Allreduce (in place) of the gradient slab.  With equal shards,
   weight = 1 / size averages; with unequal ones (the last minibatch),
   weight = k_r / k, the rank's share of the k examples, gives exactly the
   gradient of the mean loss over the global minibatch.  0 or -1. */
NB_API int nb_mpi_allreduce_grad(nb_params *p, double weight);
/* The all-reduce and the optimizer step in one, with the step's work shared
   out (ZeRO stage 1): a reduce-scatter of weight * grad gives each rank the
   summed gradient of its nb_shard of the slab, o steps those values only,
   and an all-gather gives every rank all the new values.  The values equal
   nb_mpi_allreduce_grad + nb_optim_step's (the sums in another order), with
   1/size of the optimizer's work per rank.  Afterwards o's state (momentum,
   moments) is current only in this rank's share and the gradient slab only
   there: call nb_mpi_sync_optim before saving a checkpoint.  0 or -1. */
NB_API int nb_mpi_sharded_step(nb_params *p, nb_optim *o, double weight);
/* Brings every rank's optimizer state up to date from the other ranks'
   shares (after nb_mpi_sharded_step; collective).  0 or -1. */
NB_API int nb_mpi_sync_optim(nb_optim *o);
/* v[0..n) := its sum over ranks, on every rank (metrics: loss sums, counts
   of correct predictions, example counts).  0 or -1. */
NB_API int nb_mpi_allreduce_sum(double *v, int64_t n);
/* v[0..n) := its maximum over ranks, on every rank.  0 or -1. */
NB_API int nb_mpi_allreduce_max(double *v, int64_t n);
/* Ends the whole job (MPI_Abort on MPI_COMM_WORLD) with `code`, after
   printing `why` (may be NULL) on stderr: for a program that cannot go on,
   so that no other rank waits forever. */
NB_API void nb_mpi_abort(int code, const char *why);
#endif /* NABLA_HAVE_MPI */

#ifdef __cplusplus
}
#endif
#endif /* NABLA_H */
