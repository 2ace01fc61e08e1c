"""nascsim: a benchmark-table simulator for NASC (neural architecture search for split computing).

The search (ASNG over architecture and split point) runs over HW-NAS-Bench latency tables, FLOP
counts and an accuracy surrogate fitted from real supernet evaluations. See README.md.
"""

__version__ = "0.1.0"
