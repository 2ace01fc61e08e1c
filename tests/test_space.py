import numpy as np
import pytest

from nascsim.space import LAYERS, arch_names, check_split, get_space, parse_arch


def test_fbnet_macro_has_22_layers_with_hwnasbench_shapes():
    assert len(LAYERS) == 22
    assert [l.c_out for l in LAYERS][:6] == [16, 24, 24, 24, 24, 32]
    assert [l.h_in for l in LAYERS] == [32] * 6 + [16] * 4 + [8] * 8 + [4] * 4
    assert LAYERS[-1].c_out == 352 and LAYERS[-1].h_out == 4
    assert [l.stride for l in LAYERS].count(2) == 3


def test_spaces_have_9_and_15_ops():
    assert get_space("fbnet").n_ops == 9
    ext = get_space("extended")
    assert ext.n_ops == 15
    assert ext.op_names[9:] == ["k3_e1/2", "k3_e1/4", "k3_e1/8", "k5_e1/2", "k5_e1/4", "k5_e1/8"]


def test_architecture_parses_from_names_or_indices_alike():
    sp = get_space("fbnet")
    by_name = parse_arch(",".join(["k3_e1"] * 21 + ["skip"]), sp)
    by_index = parse_arch(",".join(["0"] * 21 + ["8"]), sp)
    np.testing.assert_array_equal(by_name, by_index)
    assert arch_names(by_index, sp)[-1] == "skip"


@pytest.mark.parametrize(
    "arch, message",
    [
        (",".join(["0"] * 21), "has 21 ops"),
        (",".join(["0"] * 21 + ["k7_e9"]), "unknown op 'k7_e9' at layer 22"),
        (",".join(["0"] * 21 + ["9"]), "op index 9 at layer 22 is out of range"),
        (",".join(["0"] * 21 + ["k3_e1/2"]), "unknown op 'k3_e1/2'"),
    ],
)
def test_bad_architecture_is_a_clear_error(arch, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_arch(arch, get_space("fbnet"))


def test_bottleneck_ops_only_exist_in_the_extended_space():
    arch = parse_arch(",".join(["0"] * 21 + ["k3_e1/2"]), get_space("extended"))
    assert arch[-1] == 9


def test_split_must_lie_between_stem_and_last_layer():
    sp = get_space("fbnet")
    assert check_split(0, sp) == 0 and check_split(22, sp) == 22
    with pytest.raises(ValueError, match="split 23 is out of range 0..22"):
        check_split(23, sp)
    with pytest.raises(ValueError, match="unknown space 'resnet'"):
        get_space("resnet")
