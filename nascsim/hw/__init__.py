"""The hardware model: what a split network costs on a (head, tail) device pair.

    T(a, k) = T_head(a, k; i) + q * n_h(a, k) / r + T_tail(a, k; j)        (eqs. 3 and 10)
    T_block = FLOPs_block / Π_device                                       (eq. 8; Π by eq. 9, Table III)

- :mod:`~nascsim.hw.tables`: HW-NAS-Bench's FBNet latency (and energy) tables: importer, table
  files, array views; the devices are the table's ``<device>_latency`` columns;
- :mod:`~nascsim.hw.flops`: FLOPs, parameters and payload n_h of every block (the ``flops``
  latency source, the payload of eq. 10);
- :mod:`~nascsim.hw.devices`: compute power Π per device by least squares (Table III);
- :mod:`~nascsim.hw.latency`: T and its parts, numpy (the reference) over one
  :class:`~nascsim.hw.latency.LatencyModel`; :mod:`~nascsim.hw._latency_kernels`: the same in
  numba, called from the search's kernels.

Knows nothing of accuracy, search or storage: the search core (:mod:`nascsim.core`) reads it.
"""
