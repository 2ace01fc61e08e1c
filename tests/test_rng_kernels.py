"""The kernels' inline PCG64 draws exactly what numpy.random.Generator(PCG64) draws."""

import numpy as np
import pytest

from nascsim.core._rng_kernels import fill_normal, fill_uniform, state_from_generator, state_to_generator
from nascsim.core.engine import make_rng


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**40 + 7])
def test_uniforms_and_normals_equal_numpy_draw_for_draw(seed):
    rng = make_rng(seed)
    state = state_from_generator(rng)
    u = np.empty(50_000)
    fill_uniform(state, u)
    np.testing.assert_array_equal(u, rng.random(50_000))
    z = np.empty(400_000)  # enough draws to pass through the ziggurat's tail and wedge branches
    fill_normal(state, z)
    np.testing.assert_array_equal(z, rng.standard_normal(400_000))
    assert np.abs(z).max() > 3.8  # the tail (|z| > 3.654) was drawn


def test_state_round_trips_and_the_generator_continues_where_the_kernel_stopped():
    rng, twin = make_rng(3), make_rng(3)
    state = state_from_generator(rng)
    u = np.empty(1001)
    fill_uniform(state, u)
    state_to_generator(state, rng)
    np.testing.assert_array_equal(u, twin.random(1001))
    assert rng.standard_normal() == twin.standard_normal()


def test_only_pcg64_generators_are_accepted():
    with pytest.raises(ValueError, match="PCG64"):
        state_from_generator(np.random.Generator(np.random.MT19937(0)))
