"""The search core: ASNG over (architecture, split) on the objective of eq. 4, many searches fast.

    f(a, k) = ε_loss · l_SC(a, k) + ε_lat · max(0, T(a, k) - T_th)        (eq. 4)
    θ ← θ + ε_θ G, then s, γ, Δ and the projection of θ                  (ASNG: Algorithm 1's update)

- :mod:`~nascsim.core.objective`: f, its variants (NASC's l_SC and split latency, the HWNAS
  baselines' loss at p = 0 and device-only latency) and what a search observes of it;
- :mod:`~nascsim.core.asng`: the ASNG update in numpy, written from the equations (the
  reference); :mod:`~nascsim.core._asng_kernels`: the same in numba, θ in column form;
- :mod:`~nascsim.core.engine`: runs one or many searches (ASNG or uniform random sampling)
  through :mod:`~nascsim.core._engine_kernels`, the numba loops with the noisy observation;
- :mod:`~nascsim.core._rng_kernels`: NumPy's PCG64 generator inside the kernels, draw for draw;
- :mod:`~nascsim.core.schedule`: the paper's schedule (steps per epoch, default steps).

Reads the hardware model (:mod:`nascsim.hw`) and the surrogate's trees; knows nothing of methods,
CLI or storage (:mod:`nascsim.methods` builds objectives and calls the engine). The kernels'
numba options are :mod:`nascsim._jit`, shared with the hardware model's and the surrogate's kernels.

Named ``core``, not ``search``: ``nascsim.search`` is the API function, and a subpackage of that
name would replace it as the package's attribute once imported.
"""
