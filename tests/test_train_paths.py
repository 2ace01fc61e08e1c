"""Several paths per call (nascsim.train.paths): every (pair, p) gets what the single-path forward
gives it -- logits, BatchNorm statistics, gradients -- with shared work done once."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)
import torch.nn.functional as F  # noqa: E402

from nascsim.train.blocks import UnitBatchNorm2d, unit_rows  # noqa: E402
from nascsim.train.loop import BatchStatistics  # noqa: E402
from nascsim.train import paths as paths_mod  # noqa: E402
from nascsim.train.paths import forward_paths, loss_and_accuracy  # noqa: E402
from nascsim.train.supernet import SuperNet  # noqa: E402


@pytest.fixture(autouse=True, params=["per-node", "stacked"])
def stacking(request, monkeypatch):
    """Every test runs both ways: each node alone (a CPU's default) and nodes stacked into one call
    (a GPU's default, forced here on the CPU)."""
    monkeypatch.setattr(paths_mod, "STACK_ON", ("cuda",) if request.param == "per-node" else ("cpu", "cuda"))
    return request.param


@pytest.fixture(scope="module", params=["fbnet", "extended"])
def net(request):
    torch.manual_seed(0)
    return SuperNet(request.param, 10)


def pairs(net, n, seed):
    """Pairs that share prefixes (pair 1 = pair 0; pair 2 shares 10 layers) and split at 0, 22 and
    inside a bottleneck block (extended space)."""
    rng = np.random.default_rng(seed)
    archs = rng.integers(0, net.space.n_ops, (n, net.space.n_layers))
    splits = rng.integers(0, net.space.n_splits, n)
    archs[1] = archs[0]
    archs[2, :10] = archs[0, :10]
    splits[:3] = (0, 22, 7)
    if net.space.n_ops > 9:
        archs[2, 6] = 9  # a bottleneck op at the split layer: the split lies inside the block
    return archs, splits


def test_unit_batchnorm_normalises_each_unit_as_a_separate_call_would():
    torch.manual_seed(1)
    bn = UnitBatchNorm2d(5).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    ref = UnitBatchNorm2d(5).train()
    ref.load_state_dict(bn.state_dict())
    x = torch.randn(3 * 4, 5, 6, 6) * 3 + 1
    with unit_rows(4):
        y = bn(x)
    parts = [ref(x[u * 4:(u + 1) * 4]) for u in range(3)]
    torch.testing.assert_close(y, torch.cat(parts), rtol=1e-5, atol=1e-5)
    # running statistics: the mean over units of what each unit's call adds
    torch.testing.assert_close(bn.running_mean, 0.9 * torch.zeros(5) + 0.1 * torch.stack(
        [x[u * 4:(u + 1) * 4].mean((0, 2, 3)) for u in range(3)]).mean(0), rtol=1e-5, atol=1e-6)


def test_without_running_statistics_to_move_each_unit_is_still_a_separate_call():
    """Evaluation with batch statistics (momentum 0) takes the fused per-unit path."""
    torch.manual_seed(2)
    bn = UnitBatchNorm2d(5, momentum=0.0).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    x = (torch.randn(3 * 4, 5, 6, 6) * 3 + 1).contiguous(memory_format=torch.channels_last)
    with unit_rows(4):
        y = bn(x)
    parts = [F.batch_norm(x[u * 4:(u + 1) * 4], None, None, bn.weight, bn.bias, True, 0.0, bn.eps) for u in range(3)]
    torch.testing.assert_close(y, torch.cat(parts), rtol=1e-5, atol=1e-5)
    assert torch.equal(bn.running_mean, torch.zeros(5)) and torch.equal(bn.running_var, torch.ones(5))


@pytest.mark.parametrize("shared", [True, False])
def test_every_pair_gets_the_single_path_logits(net, shared):
    archs, splits = pairs(net, 6, 1)
    n = 5
    x = torch.randn(n if shared else 6 * n, 3, 32, 32)
    with BatchStatistics(net):
        logits, leaves = forward_paths(net, x, archs, splits, [0.0], shared=shared)
        assert sorted(leaves) == [(u, 0) for u in range(6)]
        for i, (u, _) in enumerate(leaves):
            xu = x if shared else x[u * n:(u + 1) * n]
            torch.testing.assert_close(logits[i], net(xu, archs[u], int(splits[u]), 0.0), rtol=1e-4, atol=1e-4)


def test_each_loss_rate_gets_its_own_dropout_mask_after_one_head(net):
    archs, splits = pairs(net, 4, 2)
    x = torch.randn(4, 3, 32, 32)
    ps = [0.0, 0.3, 0.3]
    with BatchStatistics(net):
        torch.manual_seed(0)
        logits, leaves = forward_paths(net, x, archs, splits, ps, shared=True)
        at = {lf: i for i, lf in enumerate(leaves)}
        for u in range(4):
            torch.testing.assert_close(logits[at[(u, 0)]], net(x, archs[u], int(splits[u]), 0.0), rtol=1e-4, atol=1e-4)
            assert not torch.allclose(logits[at[(u, 1)]], logits[at[(u, 2)]])  # same p, independent masks


def test_the_stacked_training_loss_has_the_gradients_of_the_per_path_mean():
    torch.manual_seed(0)
    net = SuperNet("fbnet", 10).train()
    rng = np.random.default_rng(3)
    archs = rng.integers(0, 9, (3, 22))
    archs[1, :8] = archs[0, :8]
    archs[2, :8] = archs[0, :8]  # three paths share their first 8 ops: stacked calls with per-path BatchNorm
    splits = np.array([3, 9, 15])
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    logits, _ = forward_paths(net, x, archs, splits, [0.0], shared=True)
    F.cross_entropy(logits.reshape(-1, 10), y.repeat(3)).backward()
    stacked = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    for a, k in zip(archs, splits):
        (F.cross_entropy(net(x, a, int(k), 0.0), y) / 3).backward()
    single = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
    assert set(stacked) == set(single)
    for k in single:
        torch.testing.assert_close(stacked[k], single[k], rtol=1e-4, atol=1e-5)


def test_loss_and_accuracy_are_the_per_pair_means_at_every_p(net):
    archs, splits = pairs(net, 5, 4)
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 10, (6,))
    with BatchStatistics(net):
        loss, acc = loss_and_accuracy(net, x, y, archs, splits, [0.0, 0.0])
        for u in range(5):
            out = net(x, archs[u], int(splits[u]), 0.0)
            assert loss[u, 0].item() == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-4)
            assert acc[u, 1].item() == pytest.approx((out.argmax(1) == y).float().mean().item())


def test_bad_pairs_are_named():
    net = SuperNet("fbnet", 10)
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match="split points"):
        forward_paths(net, x, np.zeros((1, 22), int), np.array([23]), [0.0], shared=True)
    with pytest.raises(ValueError, match="shape"):
        forward_paths(net, x, np.zeros((1, 21), int), np.array([3]), [0.0], shared=True)


def test_an_out_of_memory_evaluation_retries_with_fewer_rows_per_call(monkeypatch):
    import nascsim.train.evaluate as ev_mod
    from nascsim.train.evaluate import EvalTable, Evaluator, HeldOut

    calls = []
    real = ev_mod.eval_shared

    def tight(model, x, y, archs, splits, ps, max_rows, precision=None):
        calls.append(max_rows)
        if max_rows > 100:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, x, y, archs, splits, ps, max_rows, precision)

    monkeypatch.setattr(ev_mod, "eval_shared", tight)
    net = SuperNet("fbnet", 10)
    held = HeldOut(torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
    table = EvalTable("x", "d", 0, [0.0, 0.5])
    ev = Evaluator(net, held, table, [0.0, 0.5], 8, 400)
    archs, splits = np.zeros((3, 22), np.int64), np.array([1, 5, 9])
    ev.main_block(archs, splits, 0.34, np.random.default_rng(0))
    assert calls[:3] == [400, 200, 100] and ev.max_rows == 100 and len(table) == (3 + 2) * 2
