# Generates the table of tests/test_print.c from numpy's str().
import numpy as np
cases = []   # (what, shape, values as C literals | formula, expected)
def c_double(x):
    x = float(x)
    if np.isnan(x): return "NAN"
    if np.isinf(x): return "INFINITY" if x > 0 else "-INFINITY"
    if x == 0: return "-0.0" if np.signbit(x) else "0.0"
    return x.hex()
def lit(what, arr):
    a = np.asarray(arr, dtype=np.float64)
    cases.append((what, a.shape, [c_double(x) for x in a.ravel()], None, str(a)))
def formula(what, shape, kind, a):
    # kind 0: i * a - 7 (a exact binary), kind 1: i / a
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    v = (i * a - 7) if kind == 0 else (i / a)
    cases.append((what, tuple(shape), None, (kind, a), str(v.reshape(shape))))
lit("negative numbers", [[-1.5], [2.25], [-3.0]])
lit("integers 100 and -3", [100., -3.])
lit("integers in a matrix", [[1., -20., 300.], [4000., 5., -6.]])
lit("mixed magnitudes: ratio > 1000", [0.1, 1000.5, 3.])
lit("mixed magnitudes: a tiny value", [1e-5, 1.0, 123.0])
lit("1e8 switches to scientific", [1e8, 1.])
lit("just below 1e8 stays fixed", [99999999., 1.])
lit("large values", [1.5e8, 2e10, -3e12])
lit("3-digit exponents", [1e100, 1e-5])
lit("tiny values", [1e-5, 2.5e-7, -3.125e-9])
lit("a subnormal among normal values", [5e-324, 1.0])
lit("nan and inf mixed with numbers", [np.nan, 1.5, -np.inf, np.inf])
lit("only nan", [np.nan, np.nan])
lit("only infinities", [np.inf, -np.inf])
lit("nan with scientific notation", [1e-5, np.nan])
lit("zeros", [0., 0., 0.])
lit("negative zero", [0., -0.])
lit("rounding to 8 digits, ties to even", [0.001953125, 0.005859375, 1.])
lit("rounding up to the next integer", [0.999999999999, 5.])
lit("shortest digits", [0.1, 0.2, 0.30000000000000004])
lit("1/3 and 2/3", [[1/3, 2/3]])
lit("a row", [[1., 2., 3.]])
lit("0-d: 3.5", 3.5)
lit("0-d: 1.0", 1.0)
lit("0-d: 1e-05", 1e-5)
lit("0-d: 0.0001", 1e-4)
lit("0-d: nan", np.nan)
lit("0-d: inf", np.inf)
lit("0-d: -inf", -np.inf)
lit("0-d: -0.0", -0.0)
lit("0-d: 1e16", 1e16)
lit("0-d: 1e15", 1e15)
lit("0-d: 1/3", 1/3)
lit("0-d: 100", 100.)
lit("0-d: -3", -3.)
lit("0-d: 123456789", 123456789.)
lit("0-d: 1e23", 1e23)
lit("0-d: 5e-324", 5e-324)
lit("0-d: -1.5e-300", -1.5e-300)
lit("1-d", [0., 1., 2., 3., 4.])
lit("4-d", np.arange(16.).reshape(2, 2, 2, 2) - 8)
lit("(1, 3, 1)", [[[1.], [2.], [3.]]])
lit("empty (0,)", np.zeros((0,)))
lit("empty (1, 0)", np.zeros((1, 0)))
lit("empty (2, 0, 3)", np.zeros((2, 0, 3)))
formula("3-d blocks", (2, 3, 4), 0, 0.5)
formula("a 1-d row that wraps at 75 columns", (30,), 1, 7.)
formula("2-d rows that wrap", (2, 20), 1, 3.)
formula("3-d rows that wrap", (2, 2, 13), 1, 3.)
formula("1001 elements: summarised", (1001,), 0, 0.5)
formula("1000 elements: not summarised", (1000,), 0, 1.)
formula("(20, 100): summarised", (20, 100), 1, 3.)
formula("(10, 10, 50): summarised", (10, 10, 50), 1, 7.)
formula("(1001, 1): summarised column", (1001, 1), 0, 0.25)
formula("(7, 7, 7, 3): summarised, 4-d", (7, 7, 7, 3), 0, 0.5)

def cstr(s):
    out = []
    for line in s.split("\n"):
        out.append(line)
    body = '\\n"\n     "'.join(l.replace("\\", "\\\\").replace('"', '\\"') for l in out)
    return '"' + body + '"'

print("static const pcase cases[] = {")
for what, shape, vals, form, exp in cases:
    nd = len(shape)
    shp = "{" + ", ".join(str(s) for s in shape) + "}" if nd else "{0}"
    if vals is not None:
        data = "(const double[]){" + (", ".join(vals) if vals else "0.0") + "}"
        fk, fa = -1, "0"
    else:
        data = "NULL"; fk, fa = form[0], repr(form[1])
    tup = "(" + ", ".join(str(s) for s in shape) + ("," if nd == 1 else "") + ")"
    full = f"Tensor({exp}, name=x, shape={tup})"
    print(f"    {{{cstr(what)}, {nd}, {shp}, {data}, {fk}, {fa},\n     {cstr(full)}}},")
print("};")
