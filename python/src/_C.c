/*
 * nabla._C: the CPython extension over libnabla.
 *
 * A Python Tensor is a TObj: one reference to a C nb_tensor, taken with
 * nb_retain when the object is made and given back with nb_release in its
 * dealloc.  Every call into the library runs inside its own scope:
 *
 *     mark = nb_scope_begin();  r = nb_op(...);  nb_retain(r);  nb_scope_end(mark);
 *
 * so temporaries (numbers turned into 0-d tensors, intermediate results)
 * die with the scope and the Python object holds exactly one reference.
 *
 * Speed: the number slots (tp_as_number), METH_O / METH_FASTCALL methods, no
 * keyword parsing on the hot paths, and a free list of TObj, so `y * w + b`
 * costs little more than the C ops themselves.
 *
 * Errors: a failing C call returns NULL / -1 with nb_last_error(); finish()
 * turns the message into ValueError, IndexError, AxisError (both) or TypeError.
 *
 * Threads: the GIL is never released around a C call, so two Python threads
 * never run nabla code at once.  A call that can call back into Python
 * (backward through a custom Function, jacobian, gradcheck, ...) can let
 * another thread run in the middle of a sweep; it takes the graph lock
 * (own_begin), and every entry (GUARD) of another thread waits for it with
 * the GIL released.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

/* ---- the Tensor object -------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    nb_tensor *t;
} TObj;

static PyTypeObject TType;
static PyObject *AxisError;          /* ValueError + IndexError, like numpy's */
static PyObject *np_asarray;         /* numpy.asarray */
static PyObject *np_float64;         /* numpy.float64 */
static PyObject *np_ndarray;         /* numpy.ndarray */
static PyObject *np_generic;         /* numpy.generic */
static PyObject *repr_hook;          /* nabla's Tensor.__repr__, set from Python */

#define TCHECK(o) (Py_IS_TYPE((o), &TType) || PyObject_TypeCheck((o), &TType))
#define TT(o) (((TObj *)(o))->t)

#define FREE_MAX 512
static TObj *free_objs[FREE_MAX];
static int n_free_objs;

/* wrap: a new Python Tensor owning the reference r carries (r != NULL) */
static PyObject *wrap(nb_tensor *r) {
    TObj *o;
    if (n_free_objs) {
        o = free_objs[--n_free_objs];
        (void)PyObject_Init((PyObject *)o, &TType);
    } else {
        o = PyObject_New(TObj, &TType);
        if (!o) {
            nb_release(r);
            return NULL;
        }
    }
    o->t = r;
    return (PyObject *)o;
}

static void t_dealloc(PyObject *self) {
    TObj *o = (TObj *)self;
    nb_release(o->t);
    o->t = NULL;
    if (Py_IS_TYPE(self, &TType) && n_free_objs < FREE_MAX) {
        free_objs[n_free_objs++] = o;
        return;
    }
    Py_TYPE(self)->tp_free(self);
}

/* ---- the graph lock (see the header comment) ------------------------------ */
static unsigned long g_owner;
static int g_depth;
static PyThread_type_lock g_lock;

static void guard_wait(void) {
    unsigned long me = PyThread_get_thread_ident();
    while (g_owner && g_owner != me) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(g_lock, WAIT_LOCK);
        PyThread_release_lock(g_lock);
        Py_END_ALLOW_THREADS
    }
}
#define GUARD()                       \
    do {                              \
        if (g_owner) guard_wait();    \
    } while (0)

static void own_begin(void) {
    GUARD();
    if (g_depth++ == 0) {
        PyThread_acquire_lock(g_lock, WAIT_LOCK);
        g_owner = PyThread_get_thread_ident();
    }
}
static void own_end(void) {
    if (--g_depth == 0) {
        g_owner = 0;
        PyThread_release_lock(g_lock);
    }
}

/* A Python exception raised inside a callback from C waits here until the C
   call returns (the library may call further callbacks, which then fail at
   once without running Python). */
static PyObject *pend_type, *pend_value, *pend_tb;
static int pending(void) { return pend_type != NULL; }
static void stash(void) {
    if (pend_type) {
        PyErr_Clear();
        return;
    }
    PyErr_Fetch(&pend_type, &pend_value, &pend_tb);
    if (!pend_type) {
        pend_type = PyExc_RuntimeError;
        Py_INCREF(pend_type);
        pend_value = PyUnicode_FromString("callback failed");
    }
}
static int unstash(void) { /* 1 when an exception was restored */
    if (!pend_type) return 0;
    PyErr_Restore(pend_type, pend_value, pend_tb);
    pend_type = pend_value = pend_tb = NULL;
    return 1;
}

/* ---- errors ---------------------------------------------------------------- */
static PyObject *classify(const char *m) {
    if (strstr(m, "axis") && (strstr(m, "out of range") || strstr(m, "out of bounds")))
        return AxisError;
    if (strstr(m, "index") && (strstr(m, "out of bounds") || strstr(m, "out of range")))
        return PyExc_IndexError;
    if (strstr(m, "NULL argument")) return PyExc_TypeError;
    return PyExc_ValueError;
}

/* Raises the C library's error (unless a Python exception is already set or
   waiting from a callback, which wins: it says more).  Returns NULL. */
static PyObject *raise_nb(void) {
    if (unstash() || PyErr_Occurred()) {
        nb_clear_error();
        return NULL;
    }
    const char *m = nb_last_error();
    if (!m) m = "nabla: operation failed";
    PyErr_SetString(classify(m), m);
    nb_clear_error();
    return NULL;
}

/* ends the call's scope: wraps r (retained past the scope) or raises */
static PyObject *finish(nb_tensor *r, size_t mark) {
    if (!r) {
        raise_nb();
        nb_scope_end(mark);
        return NULL;
    }
    nb_retain(r);
    nb_scope_end(mark);
    return wrap(r);
}

__attribute__((unused)) static PyObject *missing(const char *what) {
    PyErr_Format(PyExc_NotImplementedError,
                 "%s: this build of nabla's C library does not have it yet", what);
    return NULL;
}

/* ---- converting operands --------------------------------------------------- */
static nb_tensor *constant(double v) {
    nb_tensor *t = nb_scalar(v);
    if (!t) {
        raise_nb();
        return NULL;
    }
    nb_set_requires_grad(t, false);
    return t;
}

static int is_arraylike(PyObject *o) {
    return PyList_Check(o) || PyTuple_Check(o) || PyObject_IsInstance(o, np_ndarray) > 0 ||
           PyObject_IsInstance(o, np_generic) > 0;
}

/* any nesting of numbers, a numpy array: a new leaf (in the current scope)
   with requires_grad false; NULL + Python error */
static nb_tensor *from_data(PyObject *o) {
    PyObject *arr = PyObject_CallFunction(np_asarray, "OOs", o, np_float64, "C");
    if (!arr) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_C_CONTIGUOUS) != 0) {
        Py_DECREF(arr);
        return NULL;
    }
    nb_tensor *t = NULL;
    if (v.ndim > NB_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "tensor: at most %d dimensions, got %d", NB_MAX_DIMS,
                     v.ndim);
    } else {
        int64_t shape[NB_MAX_DIMS];
        for (int i = 0; i < v.ndim; i++) shape[i] = v.shape[i];
        t = nb_new((const double *)v.buf, v.ndim, shape);
        if (!t) raise_nb();
        else nb_set_requires_grad(t, false);
    }
    PyBuffer_Release(&v);
    Py_DECREF(arr);
    return t;
}

/* an operand: a Tensor (borrowed), a number or array data (new, in the
   current scope, no grad).  NULL + TypeError on anything else. */
static nb_tensor *to_nb(PyObject *o) {
    if (TCHECK(o)) return TT(o);
    if (PyFloat_Check(o)) return constant(PyFloat_AS_DOUBLE(o));
    if (PyLong_Check(o)) {
        double d = PyLong_AsDouble(o);
        if (d == -1.0 && PyErr_Occurred()) return NULL;
        return constant(d);
    }
    if (is_arraylike(o)) return from_data(o);
    PyErr_Format(PyExc_TypeError, "expected a Tensor, a number or array data, got %.100s",
                 Py_TYPE(o)->tp_name);
    return NULL;
}

static int operand_ok(PyObject *o) {
    return TCHECK(o) || PyFloat_Check(o) || PyLong_Check(o) || is_arraylike(o);
}

/* ---- generic calls --------------------------------------------------------- */
typedef nb_tensor *(*unary_fn)(nb_tensor *);
typedef nb_tensor *(*binary_fn)(nb_tensor *, nb_tensor *);

static PyObject *call_unary(PyObject *x, unary_fn f) {
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *a = to_nb(x);
    return finish(a ? f(a) : NULL, mark);
}

static PyObject *call_binary(PyObject *x, PyObject *y, binary_fn f) {
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *a = to_nb(x), *b = a ? to_nb(y) : NULL;
    return finish(b ? f(a, b) : NULL, mark);
}

/* number slots: NotImplemented for operands we do not know (Python then
   tries the other side, or raises its TypeError) */
static PyObject *slot_binary(PyObject *x, PyObject *y, binary_fn f) {
    if (Py_IS_TYPE(x, &TType) && Py_IS_TYPE(y, &TType)) {
        GUARD();
        size_t mark = nb_scope_begin();
        return finish(f(TT(x), TT(y)), mark);
    }
    if (!operand_ok(x) || !operand_ok(y)) Py_RETURN_NOTIMPLEMENTED;
    return call_binary(x, y, f);
}

static nb_tensor *pow_tt(nb_tensor *a, nb_tensor *b) { return nb_exp(nb_prod(b, nb_log(a))); }

static PyObject *t_add(PyObject *x, PyObject *y) { return slot_binary(x, y, nb_add); }
static PyObject *t_sub(PyObject *x, PyObject *y) { return slot_binary(x, y, nb_sub); }
static PyObject *t_mul(PyObject *x, PyObject *y) { return slot_binary(x, y, nb_prod); }
static PyObject *t_div(PyObject *x, PyObject *y) { return slot_binary(x, y, nb_div); }
static PyObject *t_matmul(PyObject *x, PyObject *y) { return slot_binary(x, y, nb_matmul); }
static PyObject *t_neg(PyObject *x) { return call_unary(x, nb_neg); }
static PyObject *t_pos(PyObject *x) {
    Py_INCREF(x);
    return x;
}

static PyObject *t_pow(PyObject *x, PyObject *y, PyObject *mod) {
    if (mod != Py_None) Py_RETURN_NOTIMPLEMENTED;
    if (TCHECK(x) && (PyFloat_Check(y) || PyLong_Check(y))) {
        double e = PyFloat_AsDouble(y);
        if (e == -1.0 && PyErr_Occurred()) return NULL;
        GUARD();
        size_t mark = nb_scope_begin();
        nb_tensor *r;
        if (e == 2.0) r = nb_square(TT(x));
        else if (e == 1.0) r = nb_scale(TT(x), 1.0);
        else r = nb_pow(TT(x), e);
        return finish(r, mark);
    }
    if (!operand_ok(x) || !operand_ok(y)) Py_RETURN_NOTIMPLEMENTED;
    return call_binary(x, y, pow_tt);
}

#if defined(NBPY_HAVE_NUMPY_OPS) || defined(NBPY_HAVE_ABS)
static PyObject *t_abs(PyObject *x) { return call_unary(x, nb_abs); }
#else
static PyObject *t_abs(PyObject *x) { return missing("abs"); }
#endif

static double item_of(PyObject *x, int *ok) {
    nb_tensor *t = TT(x);
    *ok = 0;
    if (nb_numel(t) != 1) {
        PyErr_Format(PyExc_ValueError,
                     "item: only a tensor of one element converts to a Python number, this one "
                     "has %lld",
                     (long long)nb_numel(t));
        return 0;
    }
    *ok = 1;
    return nb_data(t)[0];
}

static PyObject *t_float(PyObject *x) {
    int ok;
    double v = item_of(x, &ok);
    return ok ? PyFloat_FromDouble(v) : NULL;
}
static PyObject *t_int(PyObject *x) {
    int ok;
    double v = item_of(x, &ok);
    return ok ? PyLong_FromDouble(v) : NULL;
}
static int t_bool(PyObject *x) {
    int ok;
    double v = item_of(x, &ok);
    if (!ok) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "the truth value of a tensor with more than one element is ambiguous");
        return -1;
    }
    return v != 0.0;
}

static PyNumberMethods t_as_number = {
    .nb_add = t_add,
    .nb_subtract = t_sub,
    .nb_multiply = t_mul,
    .nb_true_divide = t_div,
    .nb_matrix_multiply = t_matmul,
    .nb_power = t_pow,
    .nb_negative = t_neg,
    .nb_positive = t_pos,
    .nb_absolute = t_abs,
    .nb_float = t_float,
    .nb_int = t_int,
    .nb_bool = t_bool,
};

/* ---- comparisons ------------------------------------------------------------ */
static PyObject *t_richcompare(PyObject *x, PyObject *y, int op) {
#ifdef NBPY_HAVE_NUMPY_OPS
    if (!operand_ok(x) || !operand_ok(y)) Py_RETURN_NOTIMPLEMENTED;
    binary_fn f = NULL;
    switch (op) {
    case Py_EQ: f = nb_eq; break;
    case Py_NE: f = nb_ne; break;
    case Py_LT: f = nb_lt; break;
    case Py_LE: f = nb_le; break;
    case Py_GT: f = nb_gt; break;
    case Py_GE: f = nb_ge; break;
    default: Py_RETURN_NOTIMPLEMENTED;
    }
    return call_binary(x, y, f);
#else
    (void)x;
    (void)y;
    (void)op;
    return missing("comparisons");
#endif
}

/* ---- argument helpers ------------------------------------------------------------ */
/* fetches positional-or-keyword arguments by name into out[0..n) (NULL when
   absent); -1 + TypeError on unknown or repeated ones */
static int get_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames, int n, const char *const *names, PyObject **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (nargs > n) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, n,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) out[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            const char *kw = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
            if (!kw) return -1;
            int found = -1;
            for (int i = 0; i < n; i++)
                if (strcmp(kw, names[i]) == 0) found = i;
            if (found < 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%s'",
                             fname, kw);
                return -1;
            }
            if (out[found]) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                             fname, kw);
                return -1;
            }
            out[found] = args[nargs + k];
        }
    }
    return 0;
}

static int as_int(PyObject *o, const char *what, int *out) {
    if (PyBool_Check(o) || !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, got %.100s", what,
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    long v = PyLong_AsLong(o);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < -1000000 || v > 1000000) {
        PyErr_Format(AxisError, "%s %ld is out of range", what, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int as_bool(PyObject *o, bool dflt) {
    if (!o) return dflt;
    return PyObject_IsTrue(o);
}

/* shape from ints or one sequence of ints; -1 on error */
static int parse_shape(PyObject *const *args, Py_ssize_t nargs, int64_t *shape, const char *who) {
    PyObject *seq = NULL;
    if (nargs == 1 && !PyIndex_Check(args[0])) {
        seq = PySequence_Fast(args[0], "shape must be integers or a sequence of integers");
        if (!seq) return -1;
        args = PySequence_Fast_ITEMS(seq);
        nargs = PySequence_Fast_GET_SIZE(seq);
    }
    int rc = (int)nargs;
    if (nargs > NB_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "%s: at most %d dimensions, got %zd", who, NB_MAX_DIMS,
                     nargs);
        rc = -1;
    }
    for (Py_ssize_t i = 0; rc >= 0 && i < nargs; i++) {
        if (PyBool_Check(args[i]) || !PyIndex_Check(args[i])) {
            PyErr_Format(PyExc_TypeError, "%s: a size must be an integer, got %.100s", who,
                         Py_TYPE(args[i])->tp_name);
            rc = -1;
            break;
        }
        long long v = PyLong_AsLongLong(args[i]);
        if (v == -1 && PyErr_Occurred()) rc = -1;
        else shape[i] = v;
    }
    Py_XDECREF(seq);
    return rc;
}

/* ---- reductions ------------------------------------------------------------------ */
enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_LSE, R_VAR, R_STD };
static const char *const r_names[] = {"sum",    "mean",      "max", "min", "argmax",
                                      "argmin", "logsumexp", "var", "std"};

static nb_tensor *reduce_axis(nb_tensor *a, int kind, int axis, bool keep, int ddof) {
    switch (kind) {
    case R_SUM: return nb_sum_axis(a, axis, keep);
    case R_MEAN: return nb_mean_axis(a, axis, keep);
    case R_MAX: return nb_max_axis(a, axis, keep);
#ifdef NBPY_HAVE_NUMPY_OPS
    case R_MIN: return nb_min_axis(a, axis, keep);
    case R_ARGMAX: return nb_argmax(a, axis, keep);
    case R_ARGMIN: return nb_argmin(a, axis, keep);
    case R_LSE: return nb_logsumexp(a, axis, keep);
    case R_VAR: return nb_var(a, axis, keep, ddof);
    case R_STD: return nb_sqrt(nb_var(a, axis, keep, ddof));
#endif
    default: break;
    }
    return NULL;
}

static nb_tensor *reduce_all(nb_tensor *a, int kind, bool keep, int ddof) {
    nb_tensor *r;
    switch (kind) {
    case R_SUM: r = nb_sum(a); break;
    case R_MEAN: r = nb_mean(a); break;
    case R_MAX: r = nb_max(a); break;
#ifdef NBPY_HAVE_NUMPY_OPS
    case R_MIN: r = nb_min(a); break;
#endif
    default: {
        int64_t m1 = -1;
        r = reduce_axis(nb_reshape(a, 1, &m1), kind, 0, false, ddof);
    }
    }
    if (r && keep) {
        int64_t ones[NB_MAX_DIMS];
        for (int i = 0; i < nb_ndim(a); i++) ones[i] = 1;
        r = nb_reshape(r, nb_ndim(a), ones);
    }
    return r;
}

static int cmp_desc(const void *x, const void *y) {
    return *(const int *)y - *(const int *)x;
}

/* x.<kind>(axis=None, keepdims=False[, ddof=0]) */
static PyObject *do_reduce(PyObject *x, int kind, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    static const char *const names[] = {"axis", "keepdims", "ddof"};
    PyObject *a[3] = {NULL, NULL, NULL};
    int nn = (kind == R_VAR || kind == R_STD) ? 3 : 2;
    if (get_args(r_names[kind], args, nargs, kwnames, nn, names, a) < 0) return NULL;
#ifndef NBPY_HAVE_NUMPY_OPS
    if (kind != R_SUM && kind != R_MEAN && kind != R_MAX) return missing(r_names[kind]);
#endif
    int keep = as_bool(a[1], false), ddof = 0;
    if (keep < 0) return NULL;
    if (a[2] && as_int(a[2], "ddof", &ddof) < 0) return NULL;
    if (kind == R_ARGMAX || kind == R_ARGMIN) {
        if (a[2]) return PyErr_Format(PyExc_TypeError, "%s() has no ddof", r_names[kind]);
    }
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x), *r = NULL;
    if (!t) return finish(NULL, mark);
    if (!a[0] || a[0] == Py_None) {
        r = reduce_all(t, kind, keep, ddof);
    } else if (PyTuple_Check(a[0]) || PyList_Check(a[0])) {
        if (kind == R_ARGMAX || kind == R_ARGMIN || kind == R_VAR || kind == R_STD) {
            nb_scope_end(mark);
            return PyErr_Format(PyExc_TypeError, "%s: axis must be an integer or None",
                                r_names[kind]);
        }
        Py_ssize_t n = PySequence_Size(a[0]);
        int axes[NB_MAX_DIMS], nd = nb_ndim(t);
        if (n > nd) {
            nb_scope_end(mark);
            return PyErr_Format(AxisError, "%s: %zd axes for a tensor of %d dimensions",
                                r_names[kind], n, nd);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *it = PySequence_GetItem(a[0], i);
            int ax;
            int bad = !it || as_int(it, "axis", &ax) < 0;
            Py_XDECREF(it);
            if (bad) {
                nb_scope_end(mark);
                return NULL;
            }
            if (ax < -nd || ax >= nd) {
                nb_scope_end(mark);
                return PyErr_Format(AxisError,
                                    "%s: axis %d is out of bounds for a tensor of dimension %d",
                                    r_names[kind], ax, nd);
            }
            axes[i] = ax < 0 ? ax + nd : ax;
            for (Py_ssize_t j = 0; j < i; j++)
                if (axes[j] == axes[i]) {
                    nb_scope_end(mark);
                    return PyErr_Format(PyExc_ValueError, "%s: duplicate value in axis",
                                        r_names[kind]);
                }
        }
        qsort(axes, (size_t)n, sizeof axes[0], cmp_desc);
        r = t;
        if (kind == R_MEAN) { /* mean over several axes = sum / count */
            double count = 1;
            for (Py_ssize_t i = 0; i < n; i++) {
                count *= (double)nb_shape(t)[axes[i]];
                r = nb_sum_axis(r, axes[i], keep);
            }
            r = nb_scale(r, 1.0 / count);
        } else {
            for (Py_ssize_t i = 0; i < n; i++) r = reduce_axis(r, kind, axes[i], keep, ddof);
        }
    } else {
        int ax;
        if (as_int(a[0], "axis", &ax) < 0) {
            nb_scope_end(mark);
            return NULL;
        }
        r = reduce_axis(t, kind, ax, keep, ddof);
    }
    return finish(r, mark);
}

#define REDUCE_METHOD(name, kind)                                                          \
    static PyObject *m_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs,     \
                              PyObject *kw) {                                              \
        return do_reduce(self, kind, args, nargs, kw);                                     \
    }                                                                                      \
    static PyObject *f_##name(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,      \
                              PyObject *kw) {                                              \
        if (nargs < 1) return PyErr_Format(PyExc_TypeError, #name "() needs a tensor");    \
        return do_reduce(args[0], kind, args + 1, nargs - 1, kw);                          \
    }
REDUCE_METHOD(sum, R_SUM)
REDUCE_METHOD(mean, R_MEAN)
REDUCE_METHOD(max, R_MAX)
REDUCE_METHOD(min, R_MIN)
REDUCE_METHOD(argmax, R_ARGMAX)
REDUCE_METHOD(argmin, R_ARGMIN)
REDUCE_METHOD(logsumexp, R_LSE)
REDUCE_METHOD(var, R_VAR)
REDUCE_METHOD(std, R_STD)

/* ---- unary methods and functions -------------------------------------------------- */
static nb_tensor *nb_identity_copy(nb_tensor *a) { return nb_scale(a, 1.0); }

#define UNARY(name, fn)                                                                    \
    static PyObject *m_##name(PyObject *self, PyObject *unused) {                          \
        (void)unused;                                                                      \
        return call_unary(self, fn);                                                       \
    }                                                                                      \
    static PyObject *f_##name(PyObject *mod, PyObject *x) { return call_unary(x, fn); }
UNARY(exp, nb_exp)
UNARY(log, nb_log)
UNARY(sin, nb_sin)
UNARY(cos, nb_cos)
UNARY(tanh, nb_tanh)
UNARY(sigmoid, nb_sigmoid)
UNARY(relu, nb_relu)
UNARY(sqrt, nb_sqrt)
UNARY(square, nb_square)
UNARY(neg, nb_neg)
UNARY(clone, nb_identity_copy)
#if defined(NBPY_HAVE_NUMPY_OPS) || defined(NBPY_HAVE_ABS)
UNARY(abs, nb_abs)
#else
static PyObject *m_abs(PyObject *self, PyObject *unused) { return missing("abs"); }
static PyObject *f_abs(PyObject *mod, PyObject *x) { return missing("abs"); }
#endif

#define BINARY(name, fn)                                                                   \
    static PyObject *f_##name(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {    \
        if (nargs != 2)                                                                    \
            return PyErr_Format(PyExc_TypeError, #name "() takes 2 arguments (%zd given)", \
                                nargs);                                                    \
        return call_binary(args[0], args[1], fn);                                          \
    }
BINARY(add, nb_add)
BINARY(sub, nb_sub)
BINARY(mul, nb_prod)
BINARY(div, nb_div)
BINARY(matmul, nb_matmul)
BINARY(maximum, nb_maximum)
BINARY(pow_tensor, pow_tt)
BINARY(mse_loss, nb_mse_loss)
BINARY(cross_entropy, nb_cross_entropy)
BINARY(bce_with_logits, nb_bce_with_logits)
BINARY(dual, nb_dual)
#ifdef NBPY_HAVE_NUMPY_OPS
BINARY(minimum, nb_minimum)
#else
static PyObject *f_minimum(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    return missing("minimum");
}
#endif

/* softmax(axis=-1), log_softmax(axis=-1) */
static PyObject *do_softmax(PyObject *x, int log, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    static const char *const names[] = {"axis"};
    PyObject *a[1];
    if (get_args(log ? "log_softmax" : "softmax", args, nargs, kwnames, 1, names, a) < 0)
        return NULL;
    int axis = -1;
    if (a[0] && a[0] != Py_None && as_int(a[0], "axis", &axis) < 0) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x);
    return finish(t ? (log ? nb_log_softmax(t, axis) : nb_softmax(t, axis)) : NULL, mark);
}
static PyObject *m_softmax(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kw) {
    return do_softmax(self, 0, args, nargs, kw);
}
static PyObject *m_log_softmax(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw) {
    return do_softmax(self, 1, args, nargs, kw);
}
static PyObject *f_softmax(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kw) {
    if (nargs < 1) return PyErr_Format(PyExc_TypeError, "softmax() needs a tensor");
    return do_softmax(args[0], 0, args + 1, nargs - 1, kw);
}
static PyObject *f_log_softmax(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw) {
    if (nargs < 1) return PyErr_Format(PyExc_TypeError, "log_softmax() needs a tensor");
    return do_softmax(args[0], 1, args + 1, nargs - 1, kw);
}

/* pow(x, exponent: float) */
static PyObject *f_pow(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "pow() takes 2 arguments");
    return t_pow(args[0], args[1], Py_None);
}

/* scale(x, c) */
static PyObject *f_scale(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "scale() takes 2 arguments");
    double c = PyFloat_AsDouble(args[1]);
    if (c == -1.0 && PyErr_Occurred()) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(args[0]);
    return finish(t ? nb_scale(t, c) : NULL, mark);
}

/* clip(x, lo, hi): None for an open side */
static PyObject *do_clip(PyObject *x, PyObject *lo, PyObject *hi) {
#ifdef NBPY_HAVE_NUMPY_OPS
    double l = -INFINITY, h = INFINITY;
    if (lo && lo != Py_None) {
        l = PyFloat_AsDouble(lo);
        if (l == -1.0 && PyErr_Occurred()) return NULL;
    }
    if (hi && hi != Py_None) {
        h = PyFloat_AsDouble(hi);
        if (h == -1.0 && PyErr_Occurred()) return NULL;
    }
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x);
    return finish(t ? nb_clip(t, l, h) : NULL, mark);
#else
    return missing("clip");
#endif
}
static PyObject *m_clip(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames) {
    static const char *const names[] = {"min", "max"};
    PyObject *a[2];
    if (get_args("clip", args, nargs, kwnames, 2, names, a) < 0) return NULL;
    return do_clip(self, a[0], a[1]);
}
static PyObject *f_clip(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "clip(x, lo, hi) takes 3 arguments");
    return do_clip(args[0], args[1], args[2]);
}

/* where(cond, a, b) */
static PyObject *f_where(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
#ifdef NBPY_HAVE_NUMPY_OPS
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "where(cond, a, b) takes 3 arguments");
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *c = to_nb(args[0]), *a = c ? to_nb(args[1]) : NULL, *b = a ? to_nb(args[2]) : NULL;
    return finish(b ? nb_where(c, a, b) : NULL, mark);
#else
    return missing("where");
#endif
}

/* ---- shape ------------------------------------------------------------------------- */
static nb_tensor *reshape_to(nb_tensor *t, int nd, const int64_t *shape) {
    return nb_reshape(t, nd, shape);
}

static PyObject *m_reshape(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int64_t shape[NB_MAX_DIMS + 1];
    int nd = parse_shape(args, nargs, shape, "reshape");
    if (nd < 0) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    return finish(reshape_to(TT(self), nd, shape), mark);
}

static PyObject *m_flatten(PyObject *self, PyObject *unused) {
    int64_t m1 = -1;
    GUARD();
    size_t mark = nb_scope_begin();
    return finish(nb_reshape(TT(self), 1, &m1), mark);
}

/* the shape of t with axis removed (squeeze) or a 1 inserted (expand) */
static nb_tensor *squeeze_axis(nb_tensor *t, int axis) {
    int nd = nb_ndim(t);
    const int64_t *s = nb_shape(t);
    int64_t shape[NB_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < nd; i++)
        if (i != axis) shape[k++] = s[i];
    return nb_reshape(t, k, shape);
}

static nb_tensor *expand_axis(nb_tensor *t, int axis) {
    int nd = nb_ndim(t);
    const int64_t *s = nb_shape(t);
    int64_t shape[NB_MAX_DIMS];
    if (nd >= NB_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "expand_dims: a tensor has at most %d dimensions",
                     NB_MAX_DIMS);
        return NULL;
    }
    int k = 0;
    for (int i = 0; i <= nd; i++) {
        if (i == axis) shape[k++] = 1;
        if (i < nd) shape[k++] = s[i];
    }
    return nb_reshape(t, nd + 1, shape);
}

static PyObject *do_squeeze(PyObject *x, PyObject *axis_o) {
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x);
    if (!t) return finish(NULL, mark);
    int nd = nb_ndim(t);
    const int64_t *s = nb_shape(t);
    if (!axis_o || axis_o == Py_None) {
        int64_t shape[NB_MAX_DIMS];
        int k = 0;
        for (int i = 0; i < nd; i++)
            if (s[i] != 1) shape[k++] = s[i];
        return finish(nb_reshape(t, k, shape), mark);
    }
    int ax;
    if (as_int(axis_o, "axis", &ax) < 0) {
        nb_scope_end(mark);
        return NULL;
    }
    if (ax < -nd || ax >= nd) {
        nb_scope_end(mark);
        return PyErr_Format(AxisError, "squeeze: axis %d is out of bounds for a tensor of dimension %d",
                            ax, nd);
    }
    if (ax < 0) ax += nd;
    if (s[ax] != 1) {
        nb_scope_end(mark);
        return PyErr_Format(PyExc_ValueError,
                            "squeeze: cannot select an axis to squeeze out which has size not "
                            "equal to one (axis %d has size %lld)",
                            ax, (long long)s[ax]);
    }
    return finish(squeeze_axis(t, ax), mark);
}
static PyObject *m_squeeze(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames) {
    static const char *const names[] = {"axis"};
    PyObject *a[1];
    if (get_args("squeeze", args, nargs, kwnames, 1, names, a) < 0) return NULL;
    return do_squeeze(self, a[0]);
}
static PyObject *f_squeeze(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2) return PyErr_Format(PyExc_TypeError, "squeeze(x, axis=None)");
    return do_squeeze(args[0], nargs > 1 ? args[1] : NULL);
}

static PyObject *do_expand_dims(PyObject *x, PyObject *axis_o) {
    int ax;
    if (as_int(axis_o, "axis", &ax) < 0) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x);
    if (!t) return finish(NULL, mark);
    int nd = nb_ndim(t);
    if (ax < -(nd + 1) || ax > nd) {
        nb_scope_end(mark);
        return PyErr_Format(AxisError,
                            "expand_dims: axis %d is out of bounds for a result of dimension %d",
                            ax, nd + 1);
    }
    if (ax < 0) ax += nd + 1;
    return finish(expand_axis(t, ax), mark);
}
static PyObject *f_expand_dims(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "expand_dims(x, axis) takes 2 arguments");
    return do_expand_dims(args[0], args[1]);
}
static PyObject *m_unsqueeze(PyObject *self, PyObject *axis) { return do_expand_dims(self, axis); }

/* transpose(*axes): none reverses the axes (numpy) */
static PyObject *do_transpose(PyObject *x, PyObject *const *args, Py_ssize_t nargs) {
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = to_nb(x);
    if (!t) return finish(NULL, mark);
    int nd = nb_ndim(t), axes[NB_MAX_DIMS];
    PyObject *seq = NULL;
    if (nargs == 1 && (PyTuple_Check(args[0]) || PyList_Check(args[0]))) {
        seq = PySequence_Fast(args[0], "axes");
        args = PySequence_Fast_ITEMS(seq);
        nargs = PySequence_Fast_GET_SIZE(seq);
    }
    if (nargs == 0) {
        for (int i = 0; i < nd; i++) axes[i] = nd - 1 - i;
    } else {
        if (nargs != nd) {
            Py_XDECREF(seq);
            nb_scope_end(mark);
            return PyErr_Format(PyExc_ValueError, "transpose: axes don't match tensor (%zd axes for %d dimensions)",
                                nargs, nd);
        }
        for (int i = 0; i < nd; i++) {
            if (as_int(args[i], "axis", &axes[i]) < 0) {
                Py_XDECREF(seq);
                nb_scope_end(mark);
                return NULL;
            }
        }
    }
    Py_XDECREF(seq);
    nb_tensor *r;
    if (nd < 2) {
        r = nb_reshape(t, nd, nb_shape(t)); /* a differentiable copy of the view */
    } else {
        bool last_two = true;
        for (int i = 0; i < nd - 2; i++) last_two &= axes[i] == i || axes[i] == i - nd;
        int a2 = axes[nd - 2] < 0 ? axes[nd - 2] + nd : axes[nd - 2];
        int a1 = axes[nd - 1] < 0 ? axes[nd - 1] + nd : axes[nd - 1];
        if (last_two && a2 == nd - 1 && a1 == nd - 2) {
            r = nb_transpose(t);
        } else {
#ifdef NBPY_HAVE_NUMPY_OPS
            r = nb_permute(t, axes);
#else
            nb_scope_end(mark);
            return missing("transpose with these axes (nb_permute)");
#endif
        }
    }
    return finish(r, mark);
}
static PyObject *m_transpose(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return do_transpose(self, args, nargs);
}
static PyObject *f_transpose(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1) return PyErr_Format(PyExc_TypeError, "transpose(x, *axes)");
    return do_transpose(args[0], args + 1, nargs - 1);
}

/* concatenate / stack (sequence, axis=0) */
static PyObject *do_join(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int stack) {
#ifdef NBPY_HAVE_NUMPY_OPS
    static const char *const names[] = {"tensors", "axis"};
    PyObject *a[2];
    const char *who = stack ? "stack" : "concatenate";
    if (get_args(who, args, nargs, kwnames, 2, names, a) < 0) return NULL;
    if (!a[0]) return PyErr_Format(PyExc_TypeError, "%s() needs a sequence of tensors", who);
    int axis = 0;
    if (a[1] && as_int(a[1], "axis", &axis) < 0) return NULL;
    PyObject *seq = PySequence_Fast(a[0], "a sequence of tensors");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "%s: need at least one tensor", who);
    }
    nb_tensor **ts = PyMem_Malloc((size_t)n * sizeof *ts);
    if (!ts) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *r = NULL;
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if (!(ts[i] = to_nb(PySequence_Fast_GET_ITEM(seq, i)))) break;
    if (i == n) r = stack ? nb_stack((int)n, ts, axis) : nb_concat((int)n, ts, axis);
    PyMem_Free(ts);
    Py_DECREF(seq);
    return finish(r, mark);
#else
    return missing(stack ? "stack" : "concatenate");
#endif
}
static PyObject *f_concatenate(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kw) {
    return do_join(args, nargs, kw, 0);
}
static PyObject *f_stack(PyObject *mod, PyObject *const *args, Py_ssize_t nargs, PyObject *kw) {
    return do_join(args, nargs, kw, 1);
}

/* ---- indexing ------------------------------------------------------------------------ */
/* an integer index array from a list, an ndarray or a Tensor of integral
   values (booleans: the positions of the true ones); new reference to an
   int64 C-contiguous ndarray, or NULL + IndexError */
static PyObject *index_array(PyObject *o) {
    PyObject *arr = PyObject_CallFunctionObjArgs(np_asarray, o, NULL);
    if (!arr) return NULL;
    PyObject *dt = PyObject_GetAttrString(arr, "dtype");
    PyObject *kind = dt ? PyObject_GetAttrString(dt, "kind") : NULL;
    Py_XDECREF(dt);
    const char *k = kind ? PyUnicode_AsUTF8(kind) : NULL;
    PyObject *res = NULL;
    if (!k) goto done;
    if (k[0] == 'b') {
        PyObject *nz = PyObject_CallMethod(arr, "nonzero", NULL);
        if (nz && PyTuple_GET_SIZE(nz) == 1)
            res = PyObject_CallMethod(PyTuple_GET_ITEM(nz, 0), "astype", "s", "int64");
        else if (nz)
            PyErr_SetString(PyExc_IndexError, "only 1-d boolean masks are supported");
        Py_XDECREF(nz);
    } else if (k[0] == 'i' || k[0] == 'u' || (TCHECK(o) && k[0] == 'f')) {
        if (k[0] == 'f') {
            PyObject *fl = PyObject_CallMethod(arr, "astype", "s", "int64");
            PyObject *back = fl ? PyObject_CallMethod(fl, "astype", "s", "float64") : NULL;
            PyObject *eq = back ? PyObject_CallMethod(back, "__eq__", "O", arr) : NULL;
            PyObject *all = eq ? PyObject_CallMethod(eq, "all", NULL) : NULL;
            int ok = all ? PyObject_IsTrue(all) : -1;
            Py_XDECREF(back);
            Py_XDECREF(eq);
            Py_XDECREF(all);
            if (ok == 1) res = fl;
            else {
                Py_XDECREF(fl);
                if (ok == 0)
                    PyErr_SetString(PyExc_IndexError, "a tensor used as an index must hold integers");
            }
        } else {
            res = PyObject_CallMethod(arr, "astype", "s", "int64");
        }
    } else {
        PyErr_SetString(PyExc_IndexError,
                        "only integers, slices (`:`), ellipsis (`...`), None and integer or "
                        "boolean arrays are valid indices");
    }
done:
    Py_XDECREF(kind);
    Py_DECREF(arr);
    if (res) { /* contiguous */
        PyObject *c = PyObject_CallFunction(np_asarray, "Oss", res, "int64", "C");
        Py_DECREF(res);
        res = c;
    }
    return res;
}

static int is_index_array(PyObject *o) {
    return PyList_Check(o) || PyObject_IsInstance(o, np_ndarray) > 0 || TCHECK(o);
}

/* an integer (Python's or numpy's), not an array (numpy arrays have __index__ too) */
static int is_int_key(PyObject *o) {
    return PyLong_Check(o) || (PyIndex_Check(o) && !is_index_array(o));
}

static nb_tensor *take_rows(nb_tensor *cur, int axis, PyObject *item) {
    PyObject *arr = index_array(item);
    if (!arr) return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_C_CONTIGUOUS | PyBUF_ND) != 0) {
        Py_DECREF(arr);
        return NULL;
    }
    int64_t n = (int64_t)(v.len / 8), size = nb_shape(cur)[axis];
    int64_t *idx = (int64_t *)v.buf;
    nb_tensor *r = NULL;
    int64_t i;
    for (i = 0; i < n; i++)
        if (idx[i] < -size || idx[i] >= size) break;
    if (i < n) {
        PyErr_Format(PyExc_IndexError, "index %lld is out of bounds for axis %d with size %lld",
                     (long long)idx[i], axis, (long long)size);
        goto out;
    }
    if (v.ndim > NB_MAX_DIMS || nb_ndim(cur) - 1 + v.ndim > NB_MAX_DIMS) {
        PyErr_SetString(PyExc_IndexError, "index: the result would have too many dimensions");
        goto out;
    }
#ifdef NBPY_HAVE_NUMPY_OPS
    r = nb_take(cur, idx, n, axis);
#else
    if (axis == 0 && !nb_requires_grad(cur)) {
        int64_t *pos = PyMem_Malloc((size_t)(n ? n : 1) * sizeof *pos);
        if (!pos) {
            PyErr_NoMemory();
            goto out;
        }
        for (int64_t j = 0; j < n; j++) pos[j] = idx[j] < 0 ? idx[j] + size : idx[j];
        r = nb_gather_rows(cur, pos, n);
        PyMem_Free(pos);
    } else {
        missing("indexing with integer arrays (nb_take)");
        goto out;
    }
#endif
    if (r && v.ndim != 1) { /* the index's shape replaces the axis */
        int nd = nb_ndim(r);
        const int64_t *s = nb_shape(r);
        int64_t shape[NB_MAX_DIMS];
        int k = 0;
        for (int d = 0; d < nd; d++) {
            if (d == axis)
                for (int j = 0; j < v.ndim; j++) shape[k++] = v.shape[j];
            else shape[k++] = s[d];
        }
        r = nb_reshape(r, k, shape);
    }
    if (!r) raise_nb();
out:
    PyBuffer_Release(&v);
    Py_DECREF(arr);
    return r;
}

static nb_tensor *index_tensor(nb_tensor *t, PyObject *key) {
    PyObject *single[1] = {key};
    PyObject *const *items = single;
    Py_ssize_t n = 1;
    if (PyTuple_Check(key)) {
        items = &PyTuple_GET_ITEM(key, 0);
        n = PyTuple_GET_SIZE(key);
    }
    int nd = nb_ndim(t), consuming = 0, ellipses = 0, arrays = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = items[i];
        if (it == Py_None) continue;
        if (it == Py_Ellipsis) {
            ellipses++;
            continue;
        }
        if (PyBool_Check(it)) {
            PyErr_SetString(PyExc_IndexError, "boolean scalar indices are not supported");
            return NULL;
        }
        if (!PySlice_Check(it) && !is_int_key(it)) {
            if (!is_index_array(it)) {
                PyErr_SetString(PyExc_IndexError,
                                "only integers, slices (`:`), ellipsis (`...`), None and "
                                "integer or boolean arrays are valid indices");
                return NULL;
            }
            arrays++;
        }
        consuming++;
    }
    if (ellipses > 1) {
        PyErr_SetString(PyExc_IndexError, "an index can only have a single ellipsis ('...')");
        return NULL;
    }
    if (consuming > nd) {
        PyErr_Format(PyExc_IndexError,
                     "too many indices for tensor: tensor is %d-dimensional, but %d were indexed",
                     nd, consuming);
        return NULL;
    }
    if (arrays > 1) {
        PyErr_SetString(PyExc_IndexError,
                        "index: only one integer or boolean array per index is supported");
        return NULL;
    }
    nb_tensor *cur = t;
    int axis = 0;
    for (Py_ssize_t i = 0; i < n && cur; i++) {
        PyObject *it = items[i];
        if (it == Py_None) {
            cur = expand_axis(cur, axis);
            axis++;
        } else if (it == Py_Ellipsis) {
            axis += nd - consuming;
        } else if (PySlice_Check(it)) {
            Py_ssize_t start, stop, step, size = (Py_ssize_t)nb_shape(cur)[axis];
            if (PySlice_Unpack(it, &start, &stop, &step) < 0) return NULL;
            Py_ssize_t len = PySlice_AdjustIndices(size, &start, &stop, step);
            if (!(step == 1 && start == 0 && len == size)) {
#ifdef NBPY_HAVE_NUMPY_OPS
                int64_t st = stop;
                if (step < 0 && stop < 0) st = NB_NONE; /* runs past the first element */
                cur = nb_slice(cur, axis, start, st, step);
#else
                missing("slicing (nb_slice)");
                return NULL;
#endif
            }
            axis++;
        } else if (is_int_key(it)) {
            Py_ssize_t k = PyNumber_AsSsize_t(it, PyExc_IndexError);
            if (k == -1 && PyErr_Occurred()) return NULL;
            int64_t size = nb_shape(cur)[axis];
            if (k < -size || k >= size) {
                PyErr_Format(PyExc_IndexError,
                             "index %zd is out of bounds for axis %d with size %lld", k, axis,
                             (long long)size);
                return NULL;
            }
            if (k < 0) k += size;
#ifdef NBPY_HAVE_NUMPY_OPS
            cur = nb_slice(cur, axis, k, k + 1, 1);
            if (cur) cur = squeeze_axis(cur, axis);
#else
            if (axis == 0 && !nb_requires_grad(cur)) {
                int64_t kk = k;
                cur = nb_gather_rows(cur, &kk, 1);
                if (cur) cur = squeeze_axis(cur, 0);
            } else {
                missing("integer indexing (nb_slice)");
                return NULL;
            }
#endif
        } else {
            PyObject *arr = index_array(it);
            if (!arr) return NULL;
            int dims = (int)PyObject_Length(arr);
            PyObject *ndo = PyObject_GetAttrString(arr, "ndim");
            dims = ndo ? (int)PyLong_AsLong(ndo) : 1;
            Py_XDECREF(ndo);
            cur = take_rows(cur, axis, arr);
            Py_DECREF(arr);
            if (!cur) return NULL;
            axis += dims;
        }
    }
    if (!cur && !PyErr_Occurred()) raise_nb();
    if (cur == t) cur = nb_reshape(t, nd, nb_shape(t)); /* x[...] : a new tensor */
    return cur;
}

static PyObject *t_getitem(PyObject *self, PyObject *key) {
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *r = index_tensor(TT(self), key);
    if (!r) {
        if (!PyErr_Occurred()) raise_nb();
        nb_scope_end(mark);
        return NULL;
    }
    return finish(r, mark);
}

static Py_ssize_t t_len(PyObject *self) {
    if (nb_ndim(TT(self)) == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
        return -1;
    }
    return (Py_ssize_t)nb_shape(TT(self))[0];
}

static PyMappingMethods t_as_mapping = {
    .mp_length = t_len,
    .mp_subscript = t_getitem,
};

static PyObject *t_iter(PyObject *self) {
    Py_ssize_t n = t_len(self);
    if (n < 0) return NULL;
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyLong_FromSsize_t(i);
        PyObject *x = k ? t_getitem(self, k) : NULL;
        Py_XDECREF(k);
        if (!x) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, x);
    }
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

/* ---- the buffer protocol: np.asarray(t) without a copy (read-only) ------------------- */
static int t_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError,
                        "a Tensor's memory is read-only (use t.numpy() for a writable copy)");
        view->obj = NULL;
        return -1;
    }
    nb_tensor *t = TT(self);
    int nd = nb_ndim(t);
    Py_ssize_t *sh = PyMem_Malloc(sizeof(Py_ssize_t) * 2 * (size_t)(nd ? nd : 1));
    if (!sh) {
        PyErr_NoMemory();
        view->obj = NULL;
        return -1;
    }
    Py_ssize_t *st = sh + (nd ? nd : 1);
    Py_ssize_t stride = 8;
    for (int i = nd - 1; i >= 0; i--) {
        sh[i] = (Py_ssize_t)nb_shape(t)[i];
        st[i] = stride;
        stride *= sh[i] ? sh[i] : 1;
    }
    view->buf = (void *)nb_data(t);
    view->obj = self;
    Py_INCREF(self);
    view->len = (Py_ssize_t)nb_numel(t) * 8;
    view->readonly = 1;
    view->itemsize = 8;
    view->format = (flags & PyBUF_FORMAT) ? "d" : NULL;
    view->ndim = nd;
    view->shape = (flags & PyBUF_ND) ? sh : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? st : NULL;
    view->suboffsets = NULL;
    view->internal = sh;
    return 0;
}
static void t_releasebuffer(PyObject *self, Py_buffer *view) { PyMem_Free(view->internal); }
static PyBufferProcs t_as_buffer = {t_getbuffer, t_releasebuffer};

/* ---- attributes ------------------------------------------------------------------------ */
static PyObject *shape_tuple(nb_tensor *t) {
    int nd = nb_ndim(t);
    PyObject *s = PyTuple_New(nd);
    if (!s) return NULL;
    for (int i = 0; i < nd; i++) PyTuple_SET_ITEM(s, i, PyLong_FromLongLong(nb_shape(t)[i]));
    return s;
}
static PyObject *g_shape(PyObject *self, void *c) { return shape_tuple(TT(self)); }
static PyObject *g_ndim(PyObject *self, void *c) { return PyLong_FromLong(nb_ndim(TT(self))); }
static PyObject *g_size(PyObject *self, void *c) {
    return PyLong_FromLongLong(nb_numel(TT(self)));
}
static PyObject *g_grad(PyObject *self, void *c) {
    nb_tensor *g = nb_grad(TT(self));
    if (!g) Py_RETURN_NONE;
    return wrap(nb_retain(g));
}
static int s_grad(PyObject *self, PyObject *v, void *c) {
    if (v == NULL || v == Py_None) {
        if (nb_grad(TT(self))) nb_zero_grad(TT(self));
        return 0;
    }
    PyErr_SetString(PyExc_AttributeError,
                    "grad can only be reset (t.grad = None zeroes it); use backward to set it");
    return -1;
}
static PyObject *g_requires_grad(PyObject *self, void *c) {
    return PyBool_FromLong(nb_requires_grad(TT(self)));
}
static int s_requires_grad(PyObject *self, PyObject *v, void *c) {
    int on = v ? PyObject_IsTrue(v) : 0;
    if (on < 0) return -1;
    nb_set_requires_grad(TT(self), on);
    return 0;
}
static PyObject *g_is_leaf(PyObject *self, void *c) { return PyBool_FromLong(nb_is_leaf(TT(self))); }
static PyObject *g_name(PyObject *self, void *c) { return PyUnicode_FromString(nb_name(TT(self))); }
static int s_name(PyObject *self, PyObject *v, void *c) {
    const char *s = v ? PyUnicode_AsUTF8(v) : NULL;
    if (!s) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a name is a string");
        return -1;
    }
    nb_set_name(TT(self), s);
    return 0;
}
static PyObject *g_op(PyObject *self, void *c) { return PyUnicode_FromString(nb_op_name(TT(self))); }
static PyObject *g_parents(PyObject *self, void *c) {
    int n = nb_num_parents(TT(self));
    PyObject *l = PyTuple_New(n);
    for (int i = 0; l && i < n; i++) PyTuple_SET_ITEM(l, i, wrap(nb_retain(nb_parent(TT(self), i))));
    return l;
}
static PyObject *g_T(PyObject *self, void *c) { return do_transpose(self, NULL, 0); }
static PyObject *g_dtype(PyObject *self, void *c) {
    Py_INCREF(np_float64);
    return np_float64;
}
static PyObject *g_tangent(PyObject *self, void *c) {
    nb_tensor *g = nb_tangent(TT(self));
    if (!g) Py_RETURN_NONE;
    return wrap(nb_retain(g));
}

static PyGetSetDef t_getset[] = {
    {"shape", g_shape, NULL, "the shape, a tuple of ints", NULL},
    {"ndim", g_ndim, NULL, "the number of dimensions", NULL},
    {"size", g_size, NULL, "the number of elements", NULL},
    {"grad", g_grad, s_grad,
     "the gradient accumulated by backward (a Tensor), or None before any", NULL},
    {"requires_grad", g_requires_grad, s_requires_grad,
     "whether backward computes a gradient for this tensor (settable)", NULL},
    {"is_leaf", g_is_leaf, NULL, "True for a tensor made from values, not by an operation", NULL},
    {"name", g_name, s_name, "the seed's name: 'add:0', 'in:3', 'in_grad' (settable)", NULL},
    {"op", g_op, NULL, "the operation that made the tensor ('in' for a leaf)", NULL},
    {"parents", g_parents, NULL, "the inputs of the operation that made the tensor", NULL},
    {"T", g_T, NULL, "the transpose (axes reversed)", NULL},
    {"dtype", g_dtype, NULL, "the element type: numpy.float64, always", NULL},
    {"tangent", g_tangent, NULL, "the forward-mode tangent carried by the tensor, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- methods ------------------------------------------------------------------------------ */
static PyObject *m_numpy(PyObject *self, PyObject *unused) {
    PyObject *arr = PyObject_CallFunctionObjArgs(np_asarray, self, NULL);
    if (!arr) return NULL;
    PyObject *c = PyObject_CallMethod(arr, "copy", NULL);
    Py_DECREF(arr);
    return c;
}
static PyObject *m_tolist(PyObject *self, PyObject *unused) {
    PyObject *arr = PyObject_CallFunctionObjArgs(np_asarray, self, NULL);
    if (!arr) return NULL;
    PyObject *l = PyObject_CallMethod(arr, "tolist", NULL);
    Py_DECREF(arr);
    return l;
}
static PyObject *m_item(PyObject *self, PyObject *unused) { return t_float(self); }

static PyObject *m_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames) {
    static const char *const names[] = {"gradient", "retain_graph"};
    PyObject *a[2];
    if (get_args("backward", args, nargs, kwnames, 2, names, a) < 0) return NULL;
    own_begin();
    size_t mark = nb_scope_begin();
    nb_tensor *seed = NULL;
    int rc = -1;
    if (a[0] && a[0] != Py_None) {
        seed = to_nb(a[0]);
        if (!seed) goto out;
    }
    rc = nb_backward(TT(self), seed);
    if (rc != 0) raise_nb();
    else if (unstash()) rc = -1;
out:
    nb_scope_end(mark);
    own_end();
    if (rc != 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *m_zero_grad(PyObject *self, PyObject *unused) {
    if (nb_grad(TT(self))) nb_zero_grad(TT(self));
    Py_RETURN_NONE;
}
static PyObject *m_retain_grad(PyObject *self, PyObject *unused) {
    nb_retain_grad(TT(self));
    Py_RETURN_NONE;
}
static PyObject *m_detach(PyObject *self, PyObject *unused) { return call_unary(self, nb_detach); }
static PyObject *m_copy(PyObject *self, PyObject *unused) {
    GUARD();
    size_t mark = nb_scope_begin();
    return finish(nb_copy(TT(self)), mark);
}

static PyObject *m_to_dot(PyObject *self, PyObject *unused) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return PyErr_NoMemory();
    int rc = nb_dot(TT(self), f);
    fclose(f);
    PyObject *s = rc == 0 ? PyUnicode_FromStringAndSize(buf, (Py_ssize_t)len) : raise_nb();
    free(buf);
    return s;
}

static PyObject *seed_repr(nb_tensor *t) {
    char small[512];
    int n = nb_repr(t, small, sizeof small);
    if (n < 0) return raise_nb();
    if ((size_t)n < sizeof small) return PyUnicode_FromStringAndSize(small, n);
    char *big = PyMem_Malloc((size_t)n + 1);
    if (!big) return PyErr_NoMemory();
    nb_repr(t, big, (size_t)n + 1);
    PyObject *s = PyUnicode_FromStringAndSize(big, n);
    PyMem_Free(big);
    return s;
}
static PyObject *t_repr(PyObject *self) {
    if (repr_hook) return PyObject_CallOneArg(repr_hook, self);
    return seed_repr(TT(self));
}

static PyObject *t_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", "requires_grad", NULL};
    PyObject *data;
    int rg = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|p:Tensor", kwlist, &data, &rg)) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t;
    if (TCHECK(data)) t = nb_copy(TT(data));
    else if (PyFloat_Check(data) || PyLong_Check(data)) t = nb_scalar(PyFloat_AsDouble(data));
    else if (is_arraylike(data)) t = from_data(data);
    else {
        nb_scope_end(mark);
        return PyErr_Format(PyExc_TypeError,
                            "tensor: data must be a number, a (nested) list, a numpy array or a "
                            "Tensor, not %.100s",
                            Py_TYPE(data)->tp_name);
    }
    if (!t) {
        if (!PyErr_Occurred()) raise_nb();
        nb_scope_end(mark);
        return NULL;
    }
    if (PyErr_Occurred()) {
        nb_scope_end(mark);
        return NULL;
    }
    nb_set_requires_grad(t, rg);
    nb_retain(t);
    nb_scope_end(mark);
    if (type == &TType) return wrap(t);
    TObj *o = (TObj *)type->tp_alloc(type, 0);
    if (!o) {
        nb_release(t);
        return NULL;
    }
    o->t = t;
    return (PyObject *)o;
}

#define FAST (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef t_methods[] = {
    {"numpy", m_numpy, METH_NOARGS, "numpy() -> a float64 ndarray: a copy of the values"},
    {"tolist", m_tolist, METH_NOARGS, "tolist() -> the values as nested Python lists"},
    {"item", m_item, METH_NOARGS, "item() -> the value of a one-element tensor, a float"},
    {"backward", (PyCFunction)(void (*)(void))m_backward, FAST,
     "backward(gradient=None): adds d(sum(gradient * self))/dx into x.grad of every leaf x that "
     "requires grad, in one sweep (gradient None: ones)."},
    {"zero_grad", m_zero_grad, METH_NOARGS, "zero_grad(): the gradient becomes zeros"},
    {"retain_grad", m_retain_grad, METH_NOARGS,
     "retain_grad(): an interior tensor keeps its gradient after backward"},
    {"detach", m_detach, METH_NOARGS, "detach() -> the same values, a new leaf with no graph"},
    {"copy", m_copy, METH_NOARGS, "copy() -> a deep copy, a new leaf"},
    {"clone", m_clone, METH_NOARGS, "clone() -> a differentiable copy"},
    {"to_dot", m_to_dot, METH_NOARGS,
     "to_dot() -> the Graphviz DOT text of the graph behind the tensor"},
    {"sum", (PyCFunction)(void (*)(void))m_sum, FAST, "sum(axis=None, keepdims=False)"},
    {"mean", (PyCFunction)(void (*)(void))m_mean, FAST, "mean(axis=None, keepdims=False)"},
    {"max", (PyCFunction)(void (*)(void))m_max, FAST,
     "max(axis=None, keepdims=False): the gradient goes to the maxima, split among ties"},
    {"min", (PyCFunction)(void (*)(void))m_min, FAST, "min(axis=None, keepdims=False)"},
    {"argmax", (PyCFunction)(void (*)(void))m_argmax, FAST,
     "argmax(axis=None, keepdims=False): indices as float64 values, no gradient"},
    {"argmin", (PyCFunction)(void (*)(void))m_argmin, FAST, "argmin(axis=None, keepdims=False)"},
    {"logsumexp", (PyCFunction)(void (*)(void))m_logsumexp, FAST,
     "logsumexp(axis=None, keepdims=False), stable for any finite input"},
    {"var", (PyCFunction)(void (*)(void))m_var, FAST, "var(axis=None, keepdims=False, ddof=0)"},
    {"std", (PyCFunction)(void (*)(void))m_std, FAST, "std(axis=None, keepdims=False, ddof=0)"},
    {"exp", m_exp, METH_NOARGS, "element-wise e**x"},
    {"log", m_log, METH_NOARGS, "element-wise natural logarithm"},
    {"sin", m_sin, METH_NOARGS, "element-wise sine"},
    {"cos", m_cos, METH_NOARGS, "element-wise cosine"},
    {"tanh", m_tanh, METH_NOARGS, "element-wise hyperbolic tangent"},
    {"sigmoid", m_sigmoid, METH_NOARGS, "element-wise 1 / (1 + e**-x)"},
    {"relu", m_relu, METH_NOARGS, "element-wise max(x, 0) (gradient 0 at 0)"},
    {"sqrt", m_sqrt, METH_NOARGS, "element-wise square root"},
    {"square", m_square, METH_NOARGS, "element-wise x**2"},
    {"abs", m_abs, METH_NOARGS, "element-wise |x| (gradient sign(x), 0 at 0)"},
    {"neg", m_neg, METH_NOARGS, "element-wise -x"},
    {"clip", (PyCFunction)(void (*)(void))m_clip, FAST,
     "clip(min, max): values limited to [min, max] (None: no limit)"},
    {"softmax", (PyCFunction)(void (*)(void))m_softmax, FAST, "softmax(axis=-1), stable"},
    {"log_softmax", (PyCFunction)(void (*)(void))m_log_softmax, FAST, "log_softmax(axis=-1)"},
    {"reshape", (PyCFunction)(void (*)(void))m_reshape, METH_FASTCALL,
     "reshape(*shape) (or one tuple); one size may be -1"},
    {"view", (PyCFunction)(void (*)(void))m_reshape, METH_FASTCALL, "view(*shape): reshape"},
    {"transpose", (PyCFunction)(void (*)(void))m_transpose, METH_FASTCALL,
     "transpose(*axes): permute the axes; none reverses them (numpy)"},
    {"permute", (PyCFunction)(void (*)(void))m_transpose, METH_FASTCALL,
     "permute(*axes): transpose with the axes given"},
    {"flatten", m_flatten, METH_NOARGS, "flatten() -> 1-d"},
    {"squeeze", (PyCFunction)(void (*)(void))m_squeeze, FAST,
     "squeeze(axis=None): remove axes of size 1 (that axis, or all)"},
    {"unsqueeze", m_unsqueeze, METH_O, "unsqueeze(axis): insert an axis of size 1"},
    {"expand_dims", m_unsqueeze, METH_O, "expand_dims(axis): insert an axis of size 1"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nabla.Tensor",
    .tp_basicsize = sizeof(TObj),
    .tp_dealloc = t_dealloc,
    .tp_repr = t_repr,
    .tp_as_number = &t_as_number,
    .tp_as_mapping = &t_as_mapping,
    .tp_as_buffer = &t_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Tensor(data, requires_grad=False): an n-d float64 array that records the "
              "operations applied to it (define-by-run), so that backward() computes gradients.",
    .tp_richcompare = t_richcompare,
    .tp_iter = t_iter,
    .tp_methods = t_methods,
    .tp_getset = t_getset,
    .tp_new = t_new,
};

/* ---- creation ----------------------------------------------------------------------------- */
static PyObject *f_full(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    /* full(shape, value) */
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "full(shape, value)");
    int64_t shape[NB_MAX_DIMS + 1];
    int nd = parse_shape(args, 1, shape, "full");
    if (nd < 0) return NULL;
    double v = PyFloat_AsDouble(args[1]);
    if (v == -1.0 && PyErr_Occurred()) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = nb_full(nd, shape, v);
    if (t) nb_set_requires_grad(t, false);
    return finish(t, mark);
}

static PyObject *f_random(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    /* random(shape, seed, normal) */
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "random(shape, seed, normal)");
    int64_t shape[NB_MAX_DIMS + 1];
    int nd = parse_shape(args, 1, shape, "randn");
    if (nd < 0) return NULL;
    unsigned long long seed = PyLong_AsUnsignedLongLongMask(args[1]);
    if (PyErr_Occurred()) return NULL;
    int normal = PyObject_IsTrue(args[2]);
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *t = normal ? nb_randn(nd, shape, seed) : nb_rand(nd, shape, seed);
    if (t) nb_set_requires_grad(t, false);
    return finish(t, mark);
}

/* ---- grad mode, names, misc ------------------------------------------------------------------ */
static PyObject *f_set_grad_enabled(PyObject *mod, PyObject *on) {
    int v = PyObject_IsTrue(on);
    if (v < 0) return NULL;
    return PyBool_FromLong(nb_set_grad_enabled(v));
}
static PyObject *f_is_grad_enabled(PyObject *mod, PyObject *unused) {
    return PyBool_FromLong(nb_is_grad_enabled());
}
static PyObject *f_set_anomaly(PyObject *mod, PyObject *on) {
    int v = PyObject_IsTrue(on);
    if (v < 0) return NULL;
    return PyBool_FromLong(nb_set_anomaly_detection(v));
}
static PyObject *f_set_num_threads(PyObject *mod, PyObject *n) {
    long v = PyLong_AsLong(n);
    if (v == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(nb_set_num_threads((int)v));
}
static PyObject *f_names_reset(PyObject *mod, PyObject *unused) {
    nb_names_reset();
    Py_RETURN_NONE;
}
static PyObject *f_names_next(PyObject *mod, PyObject *op) {
#ifdef NBPY_HAVE_NAMES_NEXT
    const char *s = PyUnicode_AsUTF8(op);
    if (!s) return NULL;
    int64_t k = nb_names_next(s);
    if (k < 0) return raise_nb();
    return PyLong_FromLongLong(k);
#else
    Py_RETURN_NONE; /* the counter lives in Python until the C library has nb_names_next */
#endif
}
static PyObject *f_seed_repr(PyObject *mod, PyObject *t) {
    if (!TCHECK(t)) return PyErr_Format(PyExc_TypeError, "seed_repr: expected a Tensor");
    return seed_repr(TT(t));
}
static PyObject *f_set_repr_hook(PyObject *mod, PyObject *f) {
    Py_XDECREF(repr_hook);
    repr_hook = f == Py_None ? NULL : f;
    Py_XINCREF(repr_hook);
    Py_RETURN_NONE;
}
static PyObject *f_add_method(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    /* _add_method(name, function): a method of Tensor written in Python */
    if (nargs != 2 || !PyUnicode_Check(args[0]))
        return PyErr_Format(PyExc_TypeError, "_add_method(name, function)");
    if (PyDict_SetItem(TType.tp_dict, args[0], args[1]) < 0) return NULL;
    PyType_Modified(&TType);
    Py_RETURN_NONE;
}
static PyObject *f_memory_stats(PyObject *mod, PyObject *unused) {
    nb_mem_stats s;
    nb_memory_stats(&s);
    return Py_BuildValue("{s:L,s:L,s:L,s:L,s:L}", "live_tensors", (long long)s.live_tensors,
                         "live_bytes", (long long)s.live_bytes, "peak_bytes",
                         (long long)s.peak_bytes, "cached_bytes", (long long)s.cached_bytes,
                         "system_allocs", (long long)s.system_allocs);
}
static PyObject *f_trim(PyObject *mod, PyObject *unused) {
    nb_trim();
    Py_RETURN_NONE;
}
static PyObject *f_same(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    /* _same(a, b): whether two Python tensors wrap one C tensor */
    if (nargs != 2 || !TCHECK(args[0]) || !TCHECK(args[1]))
        return PyErr_Format(PyExc_TypeError, "_same(a, b)");
    return PyBool_FromLong(TT(args[0]) == TT(args[1]));
}

static PyObject *f_set_name(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !TCHECK(args[0])) return PyErr_Format(PyExc_TypeError, "_set_name(t, name)");
    if (s_name(args[0], args[1], NULL) < 0) return NULL;
    Py_RETURN_NONE;
}

/* ---- derivatives ---------------------------------------------------------------------------- */
/* tensors from a Tensor or a sequence of them; n on success, -1 + error */
static Py_ssize_t tensor_list(PyObject *o, nb_tensor ***out, const char *what, int allow_none) {
    PyObject *seq;
    if (TCHECK(o)) {
        *out = PyMem_Malloc(sizeof **out);
        if (!*out) return -1;
        (*out)[0] = TT(o);
        return 1;
    }
    seq = PySequence_Fast(o, what);
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    *out = PyMem_Malloc(sizeof **out * (size_t)(n ? n : 1));
    if (!*out) {
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, i);
        if (allow_none && it == Py_None) (*out)[i] = NULL;
        else if (TCHECK(it)) (*out)[i] = TT(it);
        else {
            PyErr_Format(PyExc_TypeError, "%s must be Tensors, got %.100s", what,
                         Py_TYPE(it)->tp_name);
            Py_DECREF(seq);
            PyMem_Free(*out);
            return -1;
        }
    }
    Py_DECREF(seq);
    return n;
}

/* autograd(outputs, inputs, grad_outputs, create_graph) -> tuple */
static PyObject *f_autograd(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) return PyErr_Format(PyExc_TypeError, "autograd(outputs, inputs, grad_outputs, create_graph)");
    nb_tensor **outs = NULL, **ins = NULL, **seeds = NULL, **grads = NULL;
    PyObject *res = NULL;
    Py_ssize_t no = tensor_list(args[0], &outs, "outputs", 0), ni = -1, ns = -1;
    if (no < 0) goto out;
    ni = tensor_list(args[1], &ins, "inputs", 0);
    if (ni < 0) goto out;
    if (args[2] != Py_None) {
        ns = tensor_list(args[2], &seeds, "grad_outputs", 1);
        if (ns < 0) goto out;
        if (ns != no) {
            PyErr_Format(PyExc_ValueError, "grad: %zd grad_outputs for %zd outputs", ns, no);
            goto out;
        }
    }
    int cg = PyObject_IsTrue(args[3]);
    if (cg < 0) goto out;
    grads = PyMem_Calloc((size_t)(ni ? ni : 1), sizeof *grads);
    if (!grads) {
        PyErr_NoMemory();
        goto out;
    }
    own_begin();
    size_t mark = nb_scope_begin();
    if (seeds) { /* None: ones of that output's shape */
        for (Py_ssize_t i = 0; i < ns; i++)
            if (!seeds[i]) {
                seeds[i] = nb_ones(nb_ndim(outs[i]), nb_shape(outs[i]));
                if (seeds[i]) nb_set_requires_grad(seeds[i], false);
            }
    }
    int rc = nb_autograd((int)no, outs, seeds, (int)ni, ins, grads, cg);
    if (rc != 0) {
        raise_nb();
    } else if (!unstash()) {
        res = PyTuple_New(ni);
        for (Py_ssize_t i = 0; res && i < ni; i++) {
            nb_tensor *g = grads[i];
            if (!cg && g && nb_requires_grad(g)) g = nb_detach(g);
            PyTuple_SET_ITEM(res, i, wrap(nb_retain(g)));
        }
    }
    nb_scope_end(mark);
    own_end();
out:
    PyMem_Free(outs);
    PyMem_Free(ins);
    PyMem_Free(seeds);
    PyMem_Free(grads);
    return res;
}

/* a Python callable as nb_fn / nb_multi_fn */
typedef struct {
    PyObject *f;
    PyObject *keep; /* list: the results handed to C stay alive until the call returns */
    int nd;
    int64_t shape[NB_MAX_DIMS];
} tramp;

static nb_tensor *tramp_result(tramp *c, PyObject *r) {
    if (!r) {
        stash();
        return NULL;
    }
    if (!TCHECK(r)) {
        PyErr_Format(PyExc_TypeError, "the function must return a Tensor, not %.100s",
                     Py_TYPE(r)->tp_name);
        Py_DECREF(r);
        stash();
        return NULL;
    }
    if (PyList_Append(c->keep, r) < 0) {
        Py_DECREF(r);
        stash();
        return NULL;
    }
    Py_DECREF(r);
    c->nd = nb_ndim(TT(r));
    memcpy(c->shape, nb_shape(TT(r)), sizeof(int64_t) * (size_t)c->nd);
    return TT(r);
}

static nb_tensor *tramp1(nb_tensor *x, void *vc) {
    tramp *c = vc;
    if (pending()) return NULL;
    PyObject *xo = wrap(nb_retain(x));
    if (!xo) {
        stash();
        return NULL;
    }
    PyObject *r = PyObject_CallOneArg(c->f, xo);
    Py_DECREF(xo);
    return tramp_result(c, r);
}

static nb_tensor *trampn(int n, nb_tensor *const *in, void *vc) {
    tramp *c = vc;
    if (pending()) return NULL;
    PyObject *tup = PyTuple_New(n);
    if (!tup) {
        stash();
        return NULL;
    }
    for (int i = 0; i < n; i++) PyTuple_SET_ITEM(tup, i, wrap(nb_retain(in[i])));
    PyObject *r = PyObject_Call(c->f, tup, NULL);
    Py_DECREF(tup);
    return tramp_result(c, r);
}

/* reshape a (m, n) matrix to out_shape + in_shape */
static nb_tensor *unflatten(nb_tensor *J, int nd1, const int64_t *s1, int nd2, const int64_t *s2) {
    int64_t shape[2 * NB_MAX_DIMS];
    if (nd1 + nd2 > NB_MAX_DIMS) return J; /* too many dims: keep the matrix */
    memcpy(shape, s1, sizeof(int64_t) * (size_t)nd1);
    memcpy(shape + nd1, s2, sizeof(int64_t) * (size_t)nd2);
    return nb_reshape(J, nd1 + nd2, shape);
}

/* jacobian(f, x), hessian(f, x), hvp(f, x, v) */
static PyObject *do_jh(PyObject *const *args, Py_ssize_t nargs, int kind) {
    if (nargs != (kind == 2 ? 3 : 2) || !TCHECK(args[1]) || (kind == 2 && !TCHECK(args[2])))
        return PyErr_Format(PyExc_TypeError, "expected (f, x%s) with tensors", kind == 2 ? ", v" : "");
    tramp c = {args[0], PyList_New(0), 0, {0}};
    if (!c.keep) return NULL;
    own_begin();
    size_t mark = nb_scope_begin();
    nb_tensor *x = TT(args[1]), *r;
    if (kind == 0) {
        r = nb_jacobian(tramp1, x, &c);
        if (r) r = unflatten(r, c.nd, c.shape, nb_ndim(x), nb_shape(x));
    } else if (kind == 1) {
        r = nb_hessian(tramp1, x, &c);
        if (r) r = unflatten(r, nb_ndim(x), nb_shape(x), nb_ndim(x), nb_shape(x));
    } else {
        r = nb_hvp(tramp1, x, TT(args[2]), &c);
    }
    if (r && unstash()) r = NULL;
    PyObject *res = finish(r, mark);
    own_end();
    Py_DECREF(c.keep);
    return res;
}
static PyObject *f_jacobian(PyObject *m, PyObject *const *a, Py_ssize_t n) { return do_jh(a, n, 0); }
static PyObject *f_hessian(PyObject *m, PyObject *const *a, Py_ssize_t n) { return do_jh(a, n, 1); }
static PyObject *f_hvp(PyObject *m, PyObject *const *a, Py_ssize_t n) { return do_jh(a, n, 2); }

/* gradcheck(f, inputs, eps, second) -> max error */
static PyObject *f_gradcheck(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) return PyErr_Format(PyExc_TypeError, "gradcheck(f, inputs, eps, second)");
    nb_tensor **ins = NULL;
    Py_ssize_t n = tensor_list(args[1], &ins, "inputs", 0);
    if (n < 0) return NULL;
    double eps = PyFloat_AsDouble(args[2]), err = NAN;
    int second = PyObject_IsTrue(args[3]);
    if (PyErr_Occurred()) {
        PyMem_Free(ins);
        return NULL;
    }
    tramp c = {args[0], PyList_New(0), 0, {0}};
    if (!c.keep) {
        PyMem_Free(ins);
        return NULL;
    }
    own_begin();
    size_t mark = nb_scope_begin();
    int rc = second ? nb_gradgradcheck(trampn, (int)n, ins, &c, eps, &err)
                    : nb_gradcheck(trampn, (int)n, ins, &c, eps, &err);
    PyObject *res = NULL;
    if (rc < 0) raise_nb(); /* 1: the check ran and failed; err says by how much */
    else if (!unstash()) {
        nb_clear_error();
        res = PyFloat_FromDouble(err);
    }
    nb_scope_end(mark);
    own_end();
    Py_DECREF(c.keep);
    PyMem_Free(ins);
    return res;
}

/* ---- layers, losses, convolution -------------------------------------------------------------- */
static nb_tensor *linear_fwd(nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    nb_tensor *y;
    if (nb_ndim(x) == 2) y = nb_matmul_bt(x, w);
    else y = nb_matmul(x, nb_transpose(w));
    return b ? nb_add(y, b) : y;
}
static PyObject *f_linear(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "linear(x, weight, bias)");
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *x = to_nb(args[0]), *w = x ? to_nb(args[1]) : NULL, *b = NULL;
    if (w && args[2] != Py_None) b = to_nb(args[2]);
    if (!w || (args[2] != Py_None && !b)) return finish(NULL, mark);
    return finish(linear_fwd(x, w, b), mark);
}

static PyObject *f_conv2d(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
#ifdef NBPY_HAVE_CONV
    if (nargs != 5) return PyErr_Format(PyExc_TypeError, "conv2d(x, w, b, stride, padding)");
    int stride, pad;
    if (as_int(args[3], "stride", &stride) < 0 || as_int(args[4], "padding", &pad) < 0) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *x = to_nb(args[0]), *w = x ? to_nb(args[1]) : NULL, *b = NULL;
    if (w && args[2] != Py_None) b = to_nb(args[2]);
    if (!w || (args[2] != Py_None && !b)) return finish(NULL, mark);
    return finish(nb_conv2d(x, w, b, stride, pad), mark);
#else
    return missing("conv2d");
#endif
}
static PyObject *f_pool2d(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
#ifdef NBPY_HAVE_CONV
    /* pool2d(x, kernel, stride, avg) */
    if (nargs != 4) return PyErr_Format(PyExc_TypeError, "pool2d(x, kernel, stride, avg)");
    int k, s, avg = PyObject_IsTrue(args[3]);
    if (as_int(args[1], "kernel_size", &k) < 0 || as_int(args[2], "stride", &s) < 0) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    nb_tensor *x = to_nb(args[0]);
    return finish(x ? (avg ? nb_avg_pool2d(x, k, s) : nb_max_pool2d(x, k, s)) : NULL, mark);
#else
    return missing("max_pool2d");
#endif
}

static PyObject *f_idx_read(PyObject *mod, PyObject *path) {
    const char *p = PyUnicode_AsUTF8(path);
    if (!p) return NULL;
    GUARD();
    size_t mark = nb_scope_begin();
    return finish(nb_idx_read(p), mark);
}

/* ---- parameter stores and optimizers ------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    nb_params *P;
    nb_optim *O;
} OObj;

static void o_dealloc(PyObject *self) {
    OObj *o = (OObj *)self;
    nb_optim_free(o->O);
    nb_params_free(o->P); /* the Python tensors keep their (retained) C tensors */
    Py_TYPE(self)->tp_free(self);
}
static PyObject *o_step(PyObject *self, PyObject *unused) {
    OObj *o = (OObj *)self;
    GUARD();
    if (nb_optim_step(o->O) != 0) return raise_nb();
    Py_RETURN_NONE;
}
static PyObject *o_zero_grad(PyObject *self, PyObject *unused) {
    nb_params_zero_grad(((OObj *)self)->P);
    Py_RETURN_NONE;
}
static PyObject *o_get_lr(PyObject *self, void *c) {
    return PyFloat_FromDouble(nb_optim_lr(((OObj *)self)->O));
}
static int o_set_lr(PyObject *self, PyObject *v, void *c) {
    double lr = v ? PyFloat_AsDouble(v) : -1;
    if (lr == -1.0 && PyErr_Occurred()) return -1;
    if (!(lr > 0)) {
        PyErr_Format(PyExc_ValueError, "optimizer: lr must be > 0, got %g", lr);
        return -1;
    }
    nb_optim_set_lr(((OObj *)self)->O, lr);
    return 0;
}
static PyObject *o_steps(PyObject *self, void *c) {
    return PyLong_FromLongLong(nb_optim_steps(((OObj *)self)->O));
}
static PyObject *o_numel(PyObject *self, void *c) {
    return PyLong_FromLongLong(nb_params_numel(((OObj *)self)->P));
}
static PyMethodDef o_methods[] = {
    {"step", o_step, METH_NOARGS, "one update of every parameter from its gradient (one C loop)"},
    {"zero_grad", o_zero_grad, METH_NOARGS, "every parameter's gradient := 0"},
    {NULL, NULL, 0, NULL},
};
static PyGetSetDef o_getset[] = {
    {"lr", o_get_lr, o_set_lr, "the learning rate (settable: schedules)", NULL},
    {"steps", o_steps, NULL, "steps taken so far", NULL},
    {"numel", o_numel, NULL, "number of values optimized", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
static PyTypeObject OType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nabla._C.Optimizer",
    .tp_basicsize = sizeof(OObj),
    .tp_dealloc = o_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a C parameter store and optimizer over the tensors it adopted",
    .tp_methods = o_methods,
    .tp_getset = o_getset,
};

/* optimizer(params, kind, lr, a, b, eps, wd): moves every tensor of params into
   one new store (values copied; each Python tensor now wraps the store's
   tensor), then makes an SGD (kind 0: a = momentum) or Adam (kind 1: a, b =
   betas) over it */
static PyObject *f_optimizer(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) return PyErr_Format(PyExc_TypeError, "optimizer(params, kind, lr, a, b, eps, wd)");
    PyObject *seq = PySequence_Fast(args[0], "params must be a sequence of Tensors");
    if (!seq) return NULL;
    long kind = PyLong_AsLong(args[1]);
    double lr = PyFloat_AsDouble(args[2]), a = PyFloat_AsDouble(args[3]),
           b = PyFloat_AsDouble(args[4]), eps = PyFloat_AsDouble(args[5]),
           wd = PyFloat_AsDouble(args[6]);
    if (PyErr_Occurred()) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        if (!TCHECK(p)) {
            Py_DECREF(seq);
            return PyErr_Format(PyExc_TypeError, "optimizer: parameters must be Tensors, got %.100s",
                                Py_TYPE(p)->tp_name);
        }
        if (!nb_is_leaf(TT(p))) {
            Py_DECREF(seq);
            return PyErr_Format(PyExc_ValueError, "optimizer: can only optimize leaf tensors (%s is made by an operation)",
                                nb_name(TT(p)));
        }
    }
    GUARD();
    nb_params *P = nb_params_new();
    if (!P) {
        Py_DECREF(seq);
        return raise_nb();
    }
    /* first every parameter (the slabs may move while adding), then values */
    nb_tensor **nt = PyMem_Calloc((size_t)(n ? n : 1), sizeof *nt);
    int ok = nt != NULL;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        int dup = 0;
        for (Py_ssize_t j = 0; j < i; j++)
            if (PySequence_Fast_GET_ITEM(seq, j) == p) dup = 1;
        if (dup) continue;
        char name[32];
        snprintf(name, sizeof name, "p%zd", i);
        nt[i] = nb_params_add(P, name, nb_ndim(TT(p)), nb_shape(TT(p)));
        if (!nt[i]) ok = 0;
    }
    nb_optim *O = NULL;
    if (ok) {
        O = kind == 0 ? nb_sgd_new(P, lr, a, wd) : nb_adam_new(P, lr, a, b, eps, wd);
        if (!O) ok = 0;
    }
    if (!ok) {
        if (nt) raise_nb();
        else PyErr_NoMemory();
        nb_params_free(P);
        PyMem_Free(nt);
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, i);
        if (!nt[i]) continue;
        nb_tensor *old = TT(p);
        int64_t cnt = nb_numel(old);
        if (cnt) memcpy(nb_data_mut(nt[i]), nb_data(old), (size_t)cnt * sizeof(double));
        nb_set_requires_grad(nt[i], nb_requires_grad(old));
        nb_set_name(nt[i], nb_name(old));
        TT(p) = nb_retain(nt[i]);
        nb_release(old);
    }
    nb_params_zero_grad(P);
    PyMem_Free(nt);
    Py_DECREF(seq);
    OObj *o = PyObject_New(OObj, &OType);
    if (!o) {
        nb_optim_free(O);
        nb_params_free(P);
        return NULL;
    }
    o->P = P;
    o->O = O;
    return (PyObject *)o;
}

#include "function.inc"

/* ---- the module ----------------------------------------------------------------------------------- */
#define F(name, fn, flags, doc) {name, (PyCFunction)(void (*)(void))fn, flags, doc}
static PyMethodDef mod_methods[] = {
    F("add", f_add, METH_FASTCALL, "add(a, b): a + b, numpy broadcasting"),
    F("sub", f_sub, METH_FASTCALL, "sub(a, b): a - b"),
    F("mul", f_mul, METH_FASTCALL, "mul(a, b): element-wise a * b"),
    F("div", f_div, METH_FASTCALL, "div(a, b): a / b"),
    F("matmul", f_matmul, METH_FASTCALL, "matmul(a, b): numpy's matmul rules, batched too"),
    F("maximum", f_maximum, METH_FASTCALL, "maximum(a, b): element-wise max (ties split the gradient)"),
    F("minimum", f_minimum, METH_FASTCALL, "minimum(a, b): element-wise min (ties split the gradient)"),
    F("pow", f_pow, METH_FASTCALL, "pow(x, exponent)"),
    F("_pow_tensor", f_pow_tensor, METH_FASTCALL, "a ** b for tensors (exp(b log a))"),
    F("scale", f_scale, METH_FASTCALL, "scale(x, c): c * x for a number c"),
    F("exp", f_exp, METH_O, "exp(x): element-wise e**x"),
    F("log", f_log, METH_O, "log(x): element-wise natural logarithm"),
    F("sin", f_sin, METH_O, "sin(x)"),
    F("cos", f_cos, METH_O, "cos(x)"),
    F("tanh", f_tanh, METH_O, "tanh(x)"),
    F("sigmoid", f_sigmoid, METH_O, "sigmoid(x): 1 / (1 + e**-x)"),
    F("relu", f_relu, METH_O, "relu(x): max(x, 0)"),
    F("sqrt", f_sqrt, METH_O, "sqrt(x)"),
    F("square", f_square, METH_O, "square(x): x**2"),
    F("abs", f_abs, METH_O, "abs(x): |x|"),
    F("neg", f_neg, METH_O, "neg(x): -x"),
    F("clone", f_clone, METH_O, "clone(x): a differentiable copy"),
    F("sum", f_sum, FAST, "sum(x, axis=None, keepdims=False)"),
    F("mean", f_mean, FAST, "mean(x, axis=None, keepdims=False)"),
    F("max", f_max, FAST, "max(x, axis=None, keepdims=False)"),
    F("min", f_min, FAST, "min(x, axis=None, keepdims=False)"),
    F("argmax", f_argmax, FAST, "argmax(x, axis=None, keepdims=False)"),
    F("argmin", f_argmin, FAST, "argmin(x, axis=None, keepdims=False)"),
    F("logsumexp", f_logsumexp, FAST, "logsumexp(x, axis=None, keepdims=False)"),
    F("var", f_var, FAST, "var(x, axis=None, keepdims=False, ddof=0)"),
    F("std", f_std, FAST, "std(x, axis=None, keepdims=False, ddof=0)"),
    F("softmax", f_softmax, FAST, "softmax(x, axis=-1)"),
    F("log_softmax", f_log_softmax, FAST, "log_softmax(x, axis=-1)"),
    F("clip", f_clip, METH_FASTCALL, "clip(x, lo, hi)"),
    F("where", f_where, METH_FASTCALL, "where(cond, a, b): cond != 0 ? a : b"),
    F("squeeze", f_squeeze, METH_FASTCALL, "squeeze(x, axis=None)"),
    F("expand_dims", f_expand_dims, METH_FASTCALL, "expand_dims(x, axis)"),
    F("transpose", f_transpose, METH_FASTCALL, "transpose(x, *axes)"),
    F("concatenate", f_concatenate, FAST, "concatenate(tensors, axis=0)"),
    F("stack", f_stack, FAST, "stack(tensors, axis=0)"),
    F("full", f_full, METH_FASTCALL, "full(shape, value)"),
    F("random", f_random, METH_FASTCALL, "random(shape, seed, normal)"),
    F("set_grad_enabled", f_set_grad_enabled, METH_O, "set_grad_enabled(on) -> previous state"),
    F("is_grad_enabled", f_is_grad_enabled, METH_NOARGS, "is_grad_enabled()"),
    F("set_anomaly_detection", f_set_anomaly, METH_O, "set_anomaly_detection(on) -> previous"),
    F("set_num_threads", f_set_num_threads, METH_O, "set_num_threads(n) -> previous"),
    F("names_reset", f_names_reset, METH_NOARGS, "restart every name counter"),
    F("names_next", f_names_next, METH_O, "names_next(op) -> the next counter of op"),
    F("seed_repr", f_seed_repr, METH_O, "the seed's repr: Tensor(<values>, name=..., shape=...)"),
    F("_set_repr_hook", f_set_repr_hook, METH_O, "sets the function behind repr(Tensor)"),
    F("_add_method", f_add_method, METH_FASTCALL, "adds a Python method to Tensor"),
    F("_set_name", f_set_name, METH_FASTCALL, "sets a tensor's name"),
    F("_same", f_same, METH_FASTCALL, "whether two tensors wrap one C tensor"),
    F("memory_stats", f_memory_stats, METH_NOARGS, "this thread's nb_memory_stats as a dict"),
    F("trim", f_trim, METH_NOARGS, "frees this thread's cached blocks"),
    F("autograd", f_autograd, METH_FASTCALL, "autograd(outputs, inputs, grad_outputs, create_graph)"),
    F("dual", f_dual, METH_FASTCALL, "dual(primal, tangent): forward mode"),
    F("jacobian", f_jacobian, METH_FASTCALL, "jacobian(f, x)"),
    F("hessian", f_hessian, METH_FASTCALL, "hessian(f, x)"),
    F("hvp", f_hvp, METH_FASTCALL, "hvp(f, x, v)"),
    F("gradcheck", f_gradcheck, METH_FASTCALL, "gradcheck(f, inputs, eps, second) -> max error"),
    F("linear", f_linear, METH_FASTCALL, "linear(x, weight, bias): x W^T + b"),
    F("mse_loss", f_mse_loss, METH_FASTCALL, "mse_loss(a, b)"),
    F("cross_entropy", f_cross_entropy, METH_FASTCALL, "cross_entropy(logits, labels)"),
    F("bce_with_logits", f_bce_with_logits, METH_FASTCALL, "bce_with_logits(logits, targets)"),
    F("conv2d", f_conv2d, METH_FASTCALL, "conv2d(x, w, b, stride, padding)"),
    F("pool2d", f_pool2d, METH_FASTCALL, "pool2d(x, kernel, stride, avg)"),
    F("idx_read", f_idx_read, METH_O, "idx_read(path): an IDX file (gzip too) as a tensor"),
    F("optimizer", f_optimizer, METH_FASTCALL, "optimizer(params, kind, lr, a, b, eps, wd)"),
    FUNCTION_METHODS
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "nabla._C",
    "The C core of nabla: tensors and operations over libnabla.", -1, mod_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__C(void);
PyMODINIT_FUNC PyInit__C(void) {
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return NULL;
    np_asarray = PyObject_GetAttrString(np, "asarray");
    np_float64 = PyObject_GetAttrString(np, "float64");
    np_ndarray = PyObject_GetAttrString(np, "ndarray");
    np_generic = PyObject_GetAttrString(np, "generic");
    Py_DECREF(np);
    if (!np_asarray || !np_float64 || !np_ndarray || !np_generic) return NULL;
    g_lock = PyThread_allocate_lock();
    if (!g_lock) return PyErr_NoMemory();
    TType.tp_hash = PyBaseObject_Type.tp_hash; /* by identity, like torch.Tensor */
    if (PyType_Ready(&TType) < 0 || PyType_Ready(&OType) < 0) return NULL;
    if (function_type_ready() < 0) return NULL;
    /* numpy: never compute with a Tensor through the buffer; ask us (__radd__ ...) */
    if (PyDict_SetItemString(TType.tp_dict, "__array_ufunc__", Py_None) < 0) return NULL;
    PyType_Modified(&TType);
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    PyObject *bases = PyTuple_Pack(2, PyExc_ValueError, PyExc_IndexError);
    AxisError = PyErr_NewExceptionWithDoc("nabla.AxisError",
                                          "an axis out of range (a ValueError and an IndexError, "
                                          "like numpy's)",
                                          bases, NULL);
    Py_DECREF(bases);
    if (!AxisError) return NULL;
    Py_INCREF(&TType);
    PyModule_AddObject(m, "Tensor", (PyObject *)&TType);
    Py_INCREF(&OType);
    PyModule_AddObject(m, "Optimizer", (PyObject *)&OType);
    Py_INCREF(AxisError);
    PyModule_AddObject(m, "AxisError", AxisError);
    PyModule_AddIntConstant(m, "HAVE_NUMPY_OPS",
#ifdef NBPY_HAVE_NUMPY_OPS
                            1
#else
                            0
#endif
    );
    PyModule_AddIntConstant(m, "HAVE_CONV",
#ifdef NBPY_HAVE_CONV
                            1
#else
                            0
#endif
    );
    PyModule_AddIntConstant(m, "HAVE_APPLY",
#ifdef NBPY_HAVE_APPLY
                            1
#else
                            0
#endif
    );
    PyModule_AddIntConstant(m, "HAVE_NAMES_NEXT",
#ifdef NBPY_HAVE_NAMES_NEXT
                            1
#else
                            0
#endif
    );
    if (function_module_init(m) < 0) return NULL;
    return m;
}
