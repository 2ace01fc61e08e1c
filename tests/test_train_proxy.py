"""Proxy settings (width, resolution) and entangled supernet ops: what a reduced network is, that
an entangled op computes exactly its stand-alone block with sliced weights, and that the setting
travels with every checkpoint and evaluation file."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from _train_fixtures import write_cifar10  # noqa: E402

from nascsim.space import get_space  # noqa: E402
from nascsim.train.blocks import build_block  # noqa: E402
from nascsim.train.entangled import SlicedConv, TiedProjection, build_entangled_layer, shuffle_order  # noqa: E402
from nascsim.train.evaluate import evaluate_supernet, read_metadata  # noqa: E402
from nascsim.train.paths import forward_paths  # noqa: E402
from nascsim.train.pretrain import load_supernet, pretrain  # noqa: E402
from nascsim.train.proxy import Proxy, resize_images  # noqa: E402
from nascsim.train.recipe import Recipe  # noqa: E402
from nascsim.train.supernet import ChildNet, SuperNet  # noqa: E402


def test_the_full_setting_is_the_macro_architecture_itself():
    space = get_space("fbnet")
    assert Proxy().layers(space) == space.layers
    assert Proxy().is_full and Proxy().label() == "full"


@pytest.mark.parametrize("width", [0.125, 0.25, 0.5, 0.75])
def test_a_proxy_scales_every_channel_count_to_an_even_number_and_keeps_depth_and_strides(width):
    space = get_space("fbnet")
    layers = Proxy(width, 16).layers(space)
    assert [(l.index, l.stride) for l in layers] == [(l.index, l.stride) for l in space.layers]
    for small, full in zip(layers, space.layers):
        assert small.c_out % 2 == 0 and abs(small.c_out - full.c_out * width) <= 1
        assert small.h_in == full.h_in // 2


@pytest.mark.parametrize("bad", [dict(width=0), dict(width=1.5), dict(resolution=20), dict(resolution=16.0),
                                 dict(width=True)])
def test_a_bad_proxy_setting_is_refused_naming_the_value(bad):
    with pytest.raises(ValueError, match="proxy"):
        Proxy(**bad)
    with pytest.raises(ValueError, match="proxy"):
        Recipe(**bad)


def test_resizing_keeps_the_mean_colour_and_the_dtype():
    x = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3)).astype(np.uint8)
    small = resize_images(x, 16)
    assert small.shape == (5, 16, 16, 3) and small.dtype == np.uint8
    assert np.abs(small.mean((1, 2)) - x.mean((1, 2))).max() < 1.0
    assert resize_images(x, 32) is x


@pytest.mark.parametrize("space", ["fbnet", "extended"])
@pytest.mark.parametrize("bn", ["private", "shared"])
def test_every_entangled_op_computes_its_stand_alone_block_with_the_sliced_weights(space, bn):
    """The superkernel ties weights, nothing else: copy each op's slices into a plain block of the
    same op and the two give the same output (same groups, strides, activations, residual)."""
    sp = get_space(space)
    torch.manual_seed(0)
    for layer in Proxy(0.25, 16).layers(sp)[4:7]:  # a residual layer, a stride-2 layer, its successor
        shared, blocks = build_entangled_layer(layer, sp.ops, bn)
        if bn == "shared":
            with torch.no_grad():
                for prm in shared.norms.parameters():
                    prm.normal_()
        x = torch.randn(6, layer.c_in, layer.h_in, layer.h_in)
        for op, ent in zip(sp.ops, blocks):
            plain = build_block(layer, op)
            ent.train(), plain.train()
            convs = [m for m in ent.modules() if isinstance(m, (SlicedConv, TiedProjection))]
            targets = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)]
            assert len(convs) == len(targets)
            with torch.no_grad():
                for c, t in zip(convs, targets):
                    t.weight.copy_(c.weight())
                for e_bn, p_bn in zip([m for m in ent.modules() if isinstance(m, torch.nn.BatchNorm2d)],
                                      [m for m in plain.modules() if isinstance(m, torch.nn.BatchNorm2d)]):
                    w, b = e_bn.scale_shift()
                    p_bn.weight.copy_(w)
                    p_bn.bias.copy_(b)
                torch.testing.assert_close(ent(x), plain(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sharing", ["none", "entangled", "entangled-bn"])
def test_every_path_of_a_fresh_supernet_passes_its_input_on_whatever_the_sharing(sharing):
    """With zero-initialised residual branches a path is the identity at first, never a constant:
    a bottleneck op (no residual) must not inherit the conv ops' zero residual scale."""
    sp = get_space("extended")
    torch.manual_seed(0)
    net = SuperNet(sp, 10, proxy=Proxy(0.25, 16), sharing=sharing, zero_residual=True)
    x = torch.randn(8, 3, 16, 16)
    for name in ("k3_e1/2", "k5_e1/8", "k3_e1", "skip"):
        out = net(x, [sp.op_names.index(name)] * sp.n_layers, sp.n_layers)
        assert out.std(dim=0).mean() > 1e-3, name  # logits differ between images


def test_the_shuffle_order_is_where_channel_shuffle_takes_each_channel_from():
    from nascsim.train.blocks import ChannelShuffle

    x = torch.arange(12.0).view(1, 12, 1, 1)
    assert ChannelShuffle(2)(x).flatten().long().tolist() == shuffle_order(12, 2).tolist()


def test_a_grouped_op_reads_the_shared_channels_an_ungrouped_op_reads():
    """Channel i of the shared weights is one feature for every op: the grouped op's depthwise
    filter at the place where the shuffle puts pw1's channel i is shared filter i."""
    sp = get_space("fbnet")
    layer = Proxy(0.5, 16).layers(sp)[5]
    shared, blocks = build_entangled_layer(layer, sp.ops)
    g2 = blocks[sp.op_names.index("k3_e1_g2")]
    order = shuffle_order(layer.c_in, 2)
    w = g2.dw[0].weight()
    for j in range(layer.c_in):
        torch.testing.assert_close(w[j], shared.dw[order[j], :, 1:4, 1:4])


def test_entangled_ops_of_a_layer_share_one_set_of_weights_and_all_train_it():
    sp = get_space("fbnet")
    net = SuperNet(sp, 10, proxy=Proxy(0.25, 16), sharing="entangled", zero_residual=False)
    layer = 5
    w = net.shared[layer].pw1
    k3_e1, k5_e6 = sp.op_names.index("k3_e1"), sp.op_names.index("k5_e6")
    assert net.layers[layer][k3_e1].pw1[0].shared is net.layers[layer][k5_e6].pw1[0].shared
    x = torch.randn(4, 3, 16, 16)
    for op in (k3_e1, k5_e6):
        net.zero_grad()
        arch = [op] * sp.n_layers
        net(x, arch, 0).sum().backward()
        assert w.grad is not None and w.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="sharing"):
        SuperNet(sp, 10, sharing="tied")


def test_the_batched_paths_equal_single_paths_in_an_entangled_supernet():
    sp = get_space("extended")
    torch.manual_seed(1)
    net = SuperNet(sp, 10, proxy=Proxy(0.25, 16), sharing="entangled", zero_residual=False)
    rng = np.random.default_rng(0)
    archs, splits = rng.integers(0, sp.n_ops, (4, sp.n_layers)), rng.integers(0, sp.n_splits, 4)
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        logits, leaves = forward_paths(net, x, archs, splits, [0.0], shared=True)
        for i, (u, _) in enumerate(leaves):
            torch.testing.assert_close(logits[i], net(x, archs[u], int(splits[u])), rtol=1e-4, atol=1e-5)


def test_a_proxy_child_sends_the_scaled_payload_at_its_split():
    sp = get_space("fbnet")
    net = ChildNet(sp, [0] * 22, 10, proxy=Proxy(0.5, 16))
    head, tail = net.split_modules(6)
    z = head(torch.randn(2, 3, 16, 16))
    assert z.shape == (2, 16, 8, 8)  # layer 6 sends 32 channels of 16x16 in the full model
    assert tail(z).shape == (2, 10)


def test_the_setting_is_stored_in_the_checkpoint_and_the_evaluation_file(tmp_path):
    data = tmp_path / "c10"
    write_cifar10(data, per_batch=5, test=4)
    r = Recipe(epochs=1, batch_size=8, lr=0.02, width=0.25, resolution=16, sharing="entangled")
    state = pretrain(data, tmp_path / "sn", recipe=r, valid_images=8, progress=False, monitor_pairs=2, train_images=16)
    assert state["proxy"] == {"width": 0.25, "resolution": 16}
    model, _ = load_supernet(tmp_path / "sn", device="cpu")
    assert model.sharing == "entangled" and model.proxy == Proxy(0.25, 16)
    meta = evaluate_supernet(tmp_path / "sn", data, tmp_path / "e.parquet", pairs=4, lowvar_pairs=2, batch_images=4,
                             device="cpu", progress=False)
    assert read_metadata(tmp_path / "e.parquet")["recipe"]["width"] == 0.25
    assert meta["recipe"]["resolution"] == 16


def test_a_checkpoint_from_before_proxies_reads_as_the_full_model():
    legacy = {k: v for k, v in Recipe().to_dict().items() if k not in ("width", "resolution", "sharing", "op_lr_scale")}
    r = Recipe.from_dict(legacy)
    assert r.proxy == Proxy() and r.sharing == "none" and r.op_lr_scale == 1.0


def test_on_a_cpu_the_campaign_recipe_is_the_proxy_recipe_unless_an_option_says_otherwise():
    import click
    from click.testing import CliRunner

    from nascsim.cli.train_cmd import _recipe_kw, device_defaults, recipe_options
    from nascsim.train.recipe import CPU_PROXY

    seen = {}

    @click.command()
    @click.option("--device", default="cpu")
    @recipe_options(batch_size=512, lr=0.3, warmup_epochs=2.0)
    def cmd(device, **kw):
        kw.pop("threads")
        kw = device_defaults({**kw, "lambda_x": 2}, device)
        seen.update(_recipe_kw(kw), lambda_x=kw["lambda_x"])

    assert CliRunner().invoke(cmd, []).exit_code == 0
    assert {k: seen[k] for k in CPU_PROXY} == CPU_PROXY
    assert CliRunner().invoke(cmd, ["--width", "0.5", "--lr", "0.05"]).exit_code == 0
    assert seen["width"] == 0.5 and seen["lr"] == 0.05 and seen["resolution"] == 16
    assert CliRunner().invoke(cmd, ["--device", "cuda"]).exit_code == 0
    assert seen["width"] == 1.0 and seen["batch_size"] == 512
