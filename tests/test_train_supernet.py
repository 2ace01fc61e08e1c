"""The single-path supernet: path shapes, payload at every split, dropout at the split in eval,
head/tail composition."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: one thread avoids oversubscription when the suite shares cores

from nascsim.hw.flops import flop_tables  # noqa: E402
from nascsim.space import get_space  # noqa: E402
from nascsim.train.supernet import ChildNet, SuperNet  # noqa: E402


@pytest.fixture(scope="module")
def ext():
    torch.manual_seed(0)
    return SuperNet("extended", 10).eval()


def test_payload_shape_at_every_split_and_op_matches_the_payload_table(ext):
    sp = ext.space
    table = flop_tables(sp, 10).payload
    x = torch.randn(2, 3, 32, 32)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for k in range(sp.n_splits):
            for o in range(sp.n_ops) if k > 0 else [0]:
                arch = rng.integers(0, sp.n_ops, 22)
                if k > 0:
                    arch[k - 1] = o
                z = ext.forward_head(x, arch, k)
                assert z[0].numel() == table[k, o], (k, sp.ops[o].name)
                assert ext.forward_tail(z, arch, k).shape == (2, 10)


def test_forward_is_tail_of_head_when_p_is_zero(ext):
    x = torch.randn(4, 3, 32, 32)
    arch = [9] * 22  # bottleneck k3_e1/2 everywhere: the split lies inside a block
    with torch.no_grad():
        for k in (0, 1, 7, 22):
            torch.testing.assert_close(ext(x, arch, k, 0.0), ext.forward_tail(ext.forward_head(x, arch, k), arch, k))


def test_split_dropout_is_active_in_eval_mode(ext):
    x = torch.randn(4, 3, 32, 32)
    arch = [2] * 22
    with torch.no_grad():
        assert not ext.training
        a, b = ext(x, arch, 5, 0.5), ext(x, arch, 5, 0.5)
        c, d = ext(x, arch, 5, 0.0), ext(x, arch, 5, 0.0)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(c, d)


def test_paths_share_nothing_but_the_chosen_ops():
    torch.manual_seed(0)
    net = SuperNet("fbnet", 10)
    x = torch.randn(2, 3, 32, 32)
    arch = np.zeros(22, dtype=np.int64)
    net(x, arch, 3, 0.5).sum().backward()
    for li, layer in enumerate(net.layers):
        for o, blk in enumerate(layer):
            grads = [p.grad for p in blk.parameters()]
            if o == 0:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads), (li, o)


def test_wrong_architecture_length_is_an_error():
    net = SuperNet("fbnet", 10)
    with pytest.raises(ValueError, match="21 ops"):
        net(torch.zeros(1, 3, 32, 32), [0] * 21, 0)
    with pytest.raises(ValueError, match="split 23"):
        net(torch.zeros(1, 3, 32, 32), [0] * 22, 23)
    with pytest.raises(ValueError, match="op index 9 at layer 22 is out of range"):
        net(torch.zeros(1, 3, 32, 32), [0] * 21 + [9], 0)


@pytest.mark.parametrize("split", [0, 4, 22])
def test_child_split_modules_compose_to_the_whole_network(split):
    sp = get_space("extended")
    arch = [i % sp.n_ops for i in range(22)]
    arch[3] = 10  # a bottleneck at layer 4
    torch.manual_seed(0)
    net = ChildNet(sp, arch, 10).eval()
    head, tail = net.split_modules(split)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tail(head(x)), net(x, split=split))
    n_all = sum(p.numel() for p in net.parameters())
    assert sum(p.numel() for p in head.parameters()) + sum(p.numel() for p in tail.parameters()) == n_all
