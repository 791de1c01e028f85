"""The assignment's basic test cells (seed 000) against their printed outputs,
character for character."""
import numpy as np
import pytest

from nabla.seed import (Tensor, NameManager, Op, Add, Softmax, add, sub, prod, sin, cos, my_sum,
                        mean, square, matmul, exp, relu, sigmoid, tanh, softmax)


@pytest.fixture(autouse=True)
def fresh_names():
    NameManager.reset()


def col(*vals, name="in_grad"):
    """the seed's printing of a column of values already formatted"""
    body = "\n ".join("[%s]" % v for v in vals)
    return "Tensor([%s], name=%s, shape=(%d, 1))" % (body, name, len(vals))


def test_name_manager(capsys):
    for n in ["add", "in", "add", "add", "in", "prod"]:
        print(NameManager.new(n))
    assert capsys.readouterr().out == "add:0\nin:0\nadd:1\nadd:2\nin:1\nprod:0\n"
    NameManager.reset()
    assert NameManager.new("add") == "add:0"


def test_new_advances_the_ops_counter():
    NameManager.new("add")
    a = Tensor([1.0])
    assert add(a, a).name == "add:1"


def test_add_cell():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([4.0, 5.0, 6.0])
    d = add(add(a, b), 3.0)
    d.backward()
    assert repr(a.grad) == col("1.", "1.", "1.")
    assert repr(b.grad) == "Tensor([[1.]\n [1.]\n [1.]], name=in_grad, shape=(3, 1))"


def test_sub_cell():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([4.0, 5.0, 6.0])
    sub(sub(a, b), 3.0).backward()
    assert repr(a.grad) == col("1.", "1.", "1.")
    assert repr(b.grad) == col("-1.", "-1.", "-1.")


def test_prod_cell():
    a, b = Tensor([1.0, 2.0, 3.0]), Tensor([4.0, 5.0, 6.0])
    prod(prod(a, b), 3.0).backward()
    assert repr(a.grad) == col("12.", "15.", "18.")
    assert repr(b.grad) == col("3.", "6.", "9.")


def test_sin_cos_cell():
    a = Tensor([np.pi, 0, np.pi / 2])
    my_sum(add(sin(a), cos(a))).backward()
    assert repr(a.grad) == col("-1.", " 1.", "-1.")


def test_sum_cell():
    a = Tensor([3.0, 1.0, 0.0, 2.0])
    c = my_sum(add(prod(a, 3.0), a))
    assert c.shape == (1, 1)
    c.backward()
    assert repr(a.grad) == col("4.", "4.", "4.", "4.")


def test_mean_cell():
    a = Tensor([3.0, 1.0, 0.0, 2.0])
    b = mean(a)
    assert b.shape == (1, 1)
    b.backward()
    assert repr(a.grad) == col("0.25", "0.25", "0.25", "0.25")


def test_square_cell():
    a = Tensor([3.0, 1.0, 0.0, 2.0])
    b = square(a)
    assert repr(b) == col("9.", "1.", "0.", "4.", name="square:0")
    b.backward()
    assert repr(a.grad) == col("6.", "2.", "0.", "4.")


def test_matmul_cell():
    W = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    v = Tensor([1.0, 2.0, 3.0])
    z = matmul(W, v)
    assert repr(z) == col("14.", "32.", "50.", name="matmul:0")
    z.backward()
    assert repr(W.grad) == ("Tensor([[1. 2. 3.]\n [1. 2. 3.]\n [1. 2. 3.]], name=in_grad, "
                            "shape=(3, 3))")
    assert repr(v.grad) == col("12.", "15.", "18.")


def test_exp_cell():
    v = Tensor([1.0, 2.0, 3.0])
    w = exp(v)
    assert repr(w) == col(" 2.71828183", " 7.3890561 ", "20.08553692", name="exp:0")
    w.backward()
    assert repr(v.grad) == col(" 2.71828183", " 7.3890561 ", "20.08553692")


def test_relu_cell():
    v = Tensor([-1.0, 0.0, 1.0, 3.0])
    w = relu(v)
    assert repr(w) == col("0.", "0.", "1.", "3.", name="relu:0")
    w.backward()
    assert repr(v.grad) == col("0.", "0.", "1.", "1.")


def test_sigmoid_cell():
    v = Tensor([-1.0, 0.0, 1.0, 3.0])
    w = sigmoid(v)
    assert repr(w) == col("0.26894142", "0.5       ", "0.73105858", "0.95257413", name="sigmoid:0")
    w.backward()
    assert repr(v.grad) == col("0.19661193", "0.25      ", "0.19661193", "0.04517666")


def test_tanh_cell():
    v = Tensor([-1.0, 0.0, 1.0, 3.0])
    w = tanh(v)
    assert repr(w) == col("-0.76159416", " 0.        ", " 0.76159416", " 0.99505475", name="tanh:0")
    w.backward()
    assert repr(v.grad) == col("0.41997434", "1.        ", "0.41997434", "0.00986604")


def test_softmax_cell_exactly_as_printed(capsys):
    # the seed's notebook had run softmax 6 and mean 7 times before this cell
    for _ in range(6):
        NameManager.new("softmax")
    for _ in range(7):
        NameManager.new("mean")
    x = Tensor([-3.1, 0.5, 1.0, 2.0])
    y = softmax(x)
    print(y)
    a = mean(square(sub(y, [1, 0, 0, 0])))
    print("MSE:", a)
    a.backward()
    print(x.grad)
    assert capsys.readouterr().out == (
        "Tensor([[0.00381737]\n [0.13970902]\n [0.23034123]\n [0.62613238]], name=softmax:6, "
        "shape=(4, 1))\n"
        "MSE: Tensor([[0.36424932]], name=mean:7, shape=(1, 1))\n"
        "Tensor([[-0.00278095]\n [-0.02243068]\n [-0.02654377]\n [ 0.05175539]], name=in_grad, "
        "shape=(4, 1))\n")


def test_storage_rule_and_types():
    assert Tensor(3).shape == (1, 1)
    assert Tensor([1, 2, 3]).shape == (3, 1)
    assert Tensor(np.array([1, 2, 3])).numpy().dtype == np.float64
    with pytest.raises(Exception):
        Tensor(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError):
        Tensor("abc")
    with pytest.raises(TypeError):
        Tensor({1: 2})
    NameManager.reset()
    t = Tensor([1.0, 2.0])
    c = Tensor(t)
    assert (t.name, c.name) == ("in:0", "in:1")
    assert c.numpy().tolist() == [[1.0], [2.0]]
    t.numpy()[0, 0] = 9  # a copy: the tensor does not change
    assert t.numpy()[0, 0] == 1.0


def test_numbers_on_either_side_and_shapes_checked():
    a = Tensor([1.0, 2.0])
    assert prod(2.0, a).numpy().ravel().tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match=r"add: shapes \(2, 1\) and \(3, 1\)"):
        add(a, Tensor([1.0, 2.0, 3.0]))


def test_gradients_accumulate_and_zero_grad():
    a = Tensor([1.0, 2.0])
    square(a).backward()
    square(a).backward()
    assert a.grad.numpy().ravel().tolist() == [4.0, 8.0]
    a.zero_grad()
    assert a.grad.numpy().ravel().tolist() == [0.0, 0.0]


def test_op_grad_names_and_values():
    a, b = Tensor([1.0, 2.0]), Tensor([3.0, 4.0])
    ga, gb = prod.grad(Tensor([1.0, 1.0]), a, b)
    assert ga.name == "prod_grad" and gb.name == "prod_grad"
    assert ga.numpy().ravel().tolist() == [3.0, 4.0]
    (gs,) = softmax.grad(Tensor([1.0, 0.0]), Tensor([0.0, 0.0]))
    assert gs.name == "softmax_grad"
    np.testing.assert_allclose(gs.numpy().ravel(), [0.25, -0.25])
    assert isinstance(add, Add) and isinstance(softmax, Softmax)


class Cube(Op):
    """x^3 built from the seed's ops; its own grad counts its calls"""
    calls = 0

    def __call__(self, a):
        return prod(a, square(a))

    def grad(self, back_grad, a):
        Cube.calls += 1
        return [prod(back_grad, prod(3.0, square(a)))]


def test_custom_op_runs_its_grad_in_the_sweep():
    cube = Cube()
    x = Tensor([1.0, 2.0])
    y = my_sum(add(cube(x), x))
    assert cube(x).name.startswith("cube:")
    before = Cube.calls
    y.backward()
    assert Cube.calls == before + 1
    assert x.grad.numpy().ravel().tolist() == [4.0, 13.0]


class WrongGrad(Op):
    def __call__(self, a):
        return square(a)

    def grad(self, back_grad, a):
        return [back_grad, back_grad]


def test_custom_op_with_wrong_gradient_count_raises():
    x = Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="2 gradients for 1 inputs"):
        WrongGrad()(x).backward()
