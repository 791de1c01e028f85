#!/usr/bin/env python3
"""Writes examples/python/assignment.ipynb (the cells below, without outputs;
CI executes it with jupyter nbconvert --execute).  Edit here, then run
    /usr/bin/python3 examples/python/make_notebook.py"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []
md = lambda s: cells.append(new_markdown_cell(s.strip()))  # noqa: E731
code = lambda s: cells.append(new_code_cell(s.strip()))  # noqa: E731

md("""
# Automatic differentiation with computational graphs — the assignment, on nabla

The assignment's `Tensor`, `NameManager` and op objects (`nabla.seed`), its basic test
cells with their expected outputs, its extra points (operator overloading with numpy
broadcasting, higher-order derivatives) and its problems (gradient descent from many
starts, a regression, a 2-D classification), all over nabla's C core.
""")
code("""
%matplotlib inline
import matplotlib.pyplot as plt   # the inline backend draws with Agg: no display needed
import numpy as np
import seaborn as sns
import io, contextlib

import nabla as nb
from nabla.seed import (Tensor, NameManager, Op, add, sub, prod, sin, cos, my_sum, mean, square,
                        matmul, exp, relu, sigmoid, tanh, softmax)
sns.set_style('whitegrid')

def expect(cell, text):
    \"\"\"runs cell(), prints what it printed, and checks it against the seed's output\"\"\"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cell()
    print(buf.getvalue(), end="")
    assert buf.getvalue() == text, "differs from the seed's output:\\n" + text
""")
md("## NameManager")
code("""
def cell():
    for n in ['add', 'in', 'add', 'add', 'in', 'prod']:
        print(NameManager.new(n))
    NameManager.reset()
expect(cell, "add:0\\nin:0\\nadd:1\\nadd:2\\nin:1\\nprod:0\\n")
""")
md("## The basic tests (expected outputs from the assignment)")
col = lambda vals, name="in_grad": "Tensor([%s], name=%s, shape=(%d, 1))\n" % (  # noqa: E731
    "\n ".join("[%s]" % v for v in vals), name, len(vals))
seed_cells = [
    ("add", """
a = Tensor([1.0, 2.0, 3.0]); b = Tensor([4.0, 5.0, 6.0])
c = add(a, b); d = add(c, 3.0); d.backward()
print(a.grad); print(b.grad)""", col(["1."] * 3) * 2),
    ("sub", """
a = Tensor([1.0, 2.0, 3.0]); b = Tensor([4.0, 5.0, 6.0])
c = sub(a, b); d = sub(c, 3.0); d.backward()
print(a.grad); print(b.grad)""", col(["1."] * 3) + col(["-1."] * 3)),
    ("prod", """
a = Tensor([1.0, 2.0, 3.0]); b = Tensor([4.0, 5.0, 6.0])
c = prod(a, b); d = prod(c, 3.0); d.backward()
print(a.grad); print(b.grad)""", col(["12.", "15.", "18."]) + col(["3.", "6.", "9."])),
    ("sin and cos", """
a = Tensor([np.pi, 0, np.pi/2])
d = my_sum(add(sin(a), cos(a))); d.backward()
print(a.grad)""", col(["-1.", " 1.", "-1."])),
    ("sum", """
a = Tensor([3.0, 1.0, 0.0, 2.0])
c = my_sum(add(prod(a, 3.0), a)); c.backward()
print(a.grad)""", col(["4."] * 4)),
    ("mean", """
a = Tensor([3.0, 1.0, 0.0, 2.0])
b = mean(a); b.backward()
print(a.grad)""", col(["0.25"] * 4)),
    ("square", """
a = Tensor([3.0, 1.0, 0.0, 2.0])
b = square(a); print(b)
b.backward(); print(a.grad)""", col(["9.", "1.", "0.", "4."], "square:0") + col(["6.", "2.", "0.", "4."])),
    ("matmul", """
W = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
v = Tensor([1.0, 2.0, 3.0])
z = matmul(W, v); print(z)
z.backward(); print(W.grad); print(v.grad)""",
     col(["14.", "32.", "50."], "matmul:0")
     + "Tensor([[1. 2. 3.]\n [1. 2. 3.]\n [1. 2. 3.]], name=in_grad, shape=(3, 3))\n"
     + col(["12.", "15.", "18."])),
    ("exp", """
v = Tensor([1.0, 2.0, 3.0])
w = exp(v); print(w)
w.backward(); print(v.grad)""",
     col([" 2.71828183", " 7.3890561 ", "20.08553692"], "exp:0")
     + col([" 2.71828183", " 7.3890561 ", "20.08553692"])),
    ("relu", """
v = Tensor([-1.0, 0.0, 1.0, 3.0])
w = relu(v); print(w)
w.backward(); print(v.grad)""", col(["0.", "0.", "1.", "3."], "relu:0") + col(["0.", "0.", "1.", "1."])),
    ("sigmoid", """
v = Tensor([-1.0, 0.0, 1.0, 3.0])
w = sigmoid(v); print(w)
w.backward(); print(v.grad)""",
     col(["0.26894142", "0.5       ", "0.73105858", "0.95257413"], "sigmoid:0")
     + col(["0.19661193", "0.25      ", "0.19661193", "0.04517666"])),
    ("tanh", """
v = Tensor([-1.0, 0.0, 1.0, 3.0])
w = tanh(v); print(w)
w.backward(); print(v.grad)""",
     col(["-0.76159416", " 0.        ", " 0.76159416", " 0.99505475"], "tanh:0")
     + col(["0.41997434", "1.        ", "0.41997434", "0.00986604"])),
]
for title, body, out in seed_cells:
    code("# %s\nNameManager.reset()\ndef cell():\n%s\nexpect(cell, %r)"
         % (title, "\n".join("    " + l for l in body.strip().splitlines()), out))
md("""The softmax cell. The assignment's notebook printed `softmax:6` and `mean:7` because its
cells had run several times before; drawing those names first reproduces it exactly.""")
code("""
NameManager.reset()
for _ in range(6): NameManager.new('softmax')
for _ in range(7): NameManager.new('mean')
def cell():
    x = Tensor([-3.1, 0.5, 1.0, 2.0])
    y = softmax(x)
    print(y)
    diff = sub(y, [1, 0, 0, 0])
    sq = square(diff)
    a = mean(sq)
    print("MSE:", a)
    a.backward()
    print(x.grad)
expect(cell, "Tensor([[0.00381737]\\n [0.13970902]\\n [0.23034123]\\n [0.62613238]], name=softmax:6, shape=(4, 1))\\n"
             "MSE: Tensor([[0.36424932]], name=mean:7, shape=(1, 1))\\n"
             "Tensor([[-0.00278095]\\n [-0.02243068]\\n [-0.02654377]\\n [ 0.05175539]], name=in_grad, shape=(4, 1))\\n")
""")
md("A custom operation: a subclass of `Op` whose `grad` runs in the same backward sweep.")
code("""
class Cube(Op):
    def __call__(self, a):
        return prod(a, square(a))
    def grad(self, back_grad, a):
        return [prod(back_grad, prod(3.0, square(a)))]
cube = Cube()
x = Tensor([1.0, 2.0, 3.0])
y = my_sum(cube(x)); y.backward()
print(x.grad)
assert x.grad.numpy().ravel().tolist() == [3.0, 12.0, 27.0]
""")
md("## Extra points: operator overloading with numpy broadcasting (`nabla`)")
code("""
a = nb.tensor([[1., 2., 3.], [4., 5., 6.]], requires_grad=True)
b = nb.tensor([10., 20., 30.], requires_grad=True)
print(a + 2)
print(a * b)
print(a @ b)
print(a.max(), a.sum(axis=0))
loss = ((a * b + 2) @ b).mean() + a.max()
loss.backward()
print(a.grad); print(b.grad)
if nb._C.HAVE_NUMPY_OPS:   # indexing needs the C library's nb_slice / nb_take
    print(a[:, ::-1], a[1, 1:], a[..., None].shape, a[[1, 0, 1]])
""")
md("## Extra points: higher-order derivatives (seed 002's f)")
code("""
A = nb.tensor(1.0, requires_grad=True); B = nb.tensor(2.0, requires_grad=True)
f = B * ((A + B) * (A - B))
ga, gb = nb.grad(f, [A, B], create_graph=True)
(gaa,) = nb.grad(ga, A); (gbb,) = nb.grad(gb, B)
print(ga.item(), gb.item(), gaa.item(), gbb.item())
assert (ga.item(), gb.item(), gaa.item(), gbb.item()) == (4.0, -11.0, 4.0, -12.0)
print(nb.hessian(lambda v: v[1] * (v[0] + v[1]) * (v[0] - v[1]) if nb._C.HAVE_NUMPY_OPS
                 else (v * v).sum(), nb.tensor([1.0, 2.0])))
""")
md("## Gradient descent from many starts (Himmelblau's function)")
code("""
def f(p):                      # p (n, 2): n points at once
    x, y = p @ nb.tensor([[1.], [0.]]), p @ nb.tensor([[0.], [1.]])
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

starts = np.random.default_rng(0).uniform(-5, 5, size=(50, 2))
p = nb.tensor(starts, requires_grad=True)
paths = [starts]
for step in range(150):
    (g,) = nb.grad(f(p).sum(), p)
    p = (p - 0.01 * g).detach(); p.requires_grad = True
    paths.append(p.numpy())
paths = np.stack(paths)                                    # (steps, 50, 2)
final = f(nb.tensor(paths[-1])).numpy()
print("largest final value:", final.max())
assert final.max() < 1e-3

xs = np.linspace(-5, 5, 200)
X, Y = np.meshgrid(xs, xs)
grid = nb.tensor(np.stack([X.ravel(), Y.ravel()], 1))
Z = f(grid).numpy().reshape(X.shape)
q = np.linspace(-5, 5, 20); QX, QY = np.meshgrid(q, q)
qg = nb.tensor(np.stack([QX.ravel(), QY.ravel()], 1), requires_grad=True)
(G,) = nb.grad(f(qg).sum(), qg)
G = G.numpy(); n = np.linalg.norm(G, axis=1, keepdims=True) + 1e-9
fig, ax = plt.subplots(figsize=(7, 6))
ax.contour(X, Y, np.log1p(Z), levels=30, cmap="viridis")
ax.quiver(QX.ravel(), QY.ravel(), -G[:, 0] / n[:, 0], -G[:, 1] / n[:, 0], alpha=0.4)
for k in range(paths.shape[1]):
    ax.plot(paths[:, k, 0], paths[:, k, 1], lw=0.8)
ax.scatter(paths[-1, :, 0], paths[-1, :, 1], c="red", zorder=3)
ax.set_title("gradient descent from 50 starts"); plt.show()
""")
md("## A regression (a cubic, with nb.optim.Adam)")
code("""
rng = np.random.default_rng(1)
xr = rng.uniform(-2, 2, size=(200, 1))
yr = 0.5 * xr**3 - xr + 0.3 + rng.normal(scale=0.2, size=xr.shape)
X = nb.tensor(np.concatenate([xr**k for k in range(4)], 1))
w = nb.zeros(4, 1, requires_grad=True)
opt = nb.optim.Adam([w], lr=0.05)
for it in range(2000):
    opt.zero_grad()
    loss = nb.nn.functional.mse_loss(X @ w, nb.tensor(yr))
    loss.backward(); opt.step()
print("coefficients:", w.numpy().ravel(), "loss:", loss.item())
assert np.allclose(w.numpy().ravel(), [0.3, -1.0, 0.0, 0.5], atol=0.1)
xs = np.linspace(-2, 2, 100)[:, None]
plt.figure(figsize=(6, 4)); plt.scatter(xr, yr, s=8, alpha=0.5)
plt.plot(xs, np.concatenate([xs**k for k in range(4)], 1) @ w.numpy(), "r"); plt.show()
""")
md("## A 2-D classification (two moons) with decision regions")
code("""
rng = np.random.default_rng(2)
n = 400
t = rng.uniform(0, np.pi, n)
lab = rng.integers(0, 2, n)
pts = np.where(lab[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1),
               np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)) + rng.normal(scale=0.1, size=(n, 2))
model = nb.nn.Sequential(nb.nn.Linear(2, 32, seed=1), nb.nn.Tanh(), nb.nn.Linear(32, 32, seed=2),
                         nb.nn.Tanh(), nb.nn.Linear(32, 2, seed=3))
opt = nb.optim.Adam(model.parameters(), lr=0.01)
P = nb.tensor(pts)
for it in range(500):
    opt.zero_grad()
    loss = nb.nn.functional.cross_entropy(model(P), lab)
    loss.backward(); opt.step()
acc = (model(P).numpy().argmax(1) == lab).mean()
print("loss", loss.item(), "accuracy", acc)
assert acc > 0.97
gx, gy = np.meshgrid(np.linspace(-1.5, 2.5, 200), np.linspace(-1, 1.5, 200))
with nb.no_grad():
    zz = model(nb.tensor(np.stack([gx.ravel(), gy.ravel()], 1))).softmax().numpy()[:, 1]
plt.figure(figsize=(7, 5))
plt.contourf(gx, gy, zz.reshape(gx.shape), levels=20, cmap="RdBu", alpha=0.6)
sns.scatterplot(x=pts[:, 0], y=pts[:, 1], hue=lab, palette="Set1", s=15)
plt.title("decision regions"); plt.show()
""")

nb_ = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3",
                                                          "display_name": "Python 3",
                                                          "language": "python"}})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assignment.ipynb")
nbformat.write(nb_, out)
print("wrote", out)
