"""The torch blocks match nascsim.hw.flops: FLOPs counted with forward hooks on the real modules
(conv MACs, BN 4/element, ReLU 1/element, residual add 1/element, pooling (H*W+1)/element, FC
in*out), parameters, and head/tail parts of bottleneck blocks."""

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # tiny tensors: one thread avoids oversubscription when the suite shares cores
from torch import nn  # noqa: E402

from nascsim.hw.flops import block_parts, fc_count, header_count, pool_count, stem_count  # noqa: E402
from nascsim.space import FINAL_RESOLUTION, HEADER_CHANNELS, WIDTHS, get_space  # noqa: E402
from nascsim.train.blocks import (  # noqa: E402
    ResidualAdd,
    build_block,
    build_classifier,
    build_header,
    build_pool,
    build_stem,
)


def hook_flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass of a batch-1 input, by the thop 0.0.x convention."""
    total = [0]

    def hook(m, inputs, out):
        if isinstance(m, nn.Conv2d):
            total[0] += (m.in_channels // m.groups) * m.out_channels * m.kernel_size[0] * m.kernel_size[1] * out[0, 0].numel()
        elif isinstance(m, nn.BatchNorm2d):
            total[0] += 4 * out.numel()
        elif isinstance(m, (nn.ReLU, ResidualAdd)):
            total[0] += out.numel()
        elif isinstance(m, nn.AvgPool2d):
            total[0] += (inputs[0].shape[2] * inputs[0].shape[3] + 1) * out.numel()
        elif isinstance(m, nn.Linear):
            total[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in module.modules() if len(list(m.children())) == 0]
    with torch.no_grad():
        module.eval()(x)
    for h in handles:
        h.remove()
    return total[0]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("space_name", ["fbnet", "extended"])
def test_every_op_at_every_layer_has_the_flops_and_params_of_the_tables(space_name):
    sp = get_space(space_name)
    for layer in sp.layers:
        x = torch.zeros(1, layer.c_in, layer.h_in, layer.h_in)
        for op in sp.ops:
            blk = build_block(layer, op)
            head, tail = block_parts(layer, op)
            assert hook_flops(blk, x) == head.flops + tail.flops, (layer.index, op.name)
            assert n_params(blk) == head.params + tail.params, (layer.index, op.name)
            assert blk(x).shape == (1, layer.c_out, layer.h_out, layer.h_out)


def test_bottleneck_head_part_and_tail_part_split_the_flops_after_the_depthwise_conv():
    sp = get_space("extended")
    for layer in sp.layers:
        x = torch.zeros(1, layer.c_in, layer.h_in, layer.h_in)
        for op in sp.ops:
            if op.kind != "bottleneck":
                continue
            blk = build_block(layer, op)
            h_mod, t_mod = blk.parts()
            head, tail = block_parts(layer, op)
            z = h_mod(x)
            assert z.shape == (1, op.mid_channels(layer.c_in), layer.h_out, layer.h_out)
            assert hook_flops(h_mod, x) == head.flops
            assert hook_flops(t_mod, z) == tail.flops


def test_fixed_blocks_match_stem_header_pool_and_fc_counts():
    x = torch.zeros(1, 3, 32, 32)
    assert hook_flops(build_stem(), x) == stem_count().flops
    assert n_params(build_stem()) == stem_count().params
    h = torch.zeros(1, WIDTHS[-1], FINAL_RESOLUTION, FINAL_RESOLUTION)
    assert hook_flops(build_header(), h) == header_count().flops
    assert n_params(build_header()) == header_count().params
    p = torch.zeros(1, HEADER_CHANNELS, FINAL_RESOLUTION, FINAL_RESOLUTION)
    assert hook_flops(build_pool(), p) == pool_count().flops
    for classes in (10, 100):
        fc = build_classifier(classes)
        assert hook_flops(fc, torch.zeros(1, HEADER_CHANNELS, 1, 1)) == fc_count(classes).flops
        assert n_params(fc) == fc_count(classes).params
