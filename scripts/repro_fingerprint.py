"""Fingerprint of this machine's search results: compare it between machines.

Runs a fixed set of short searches with the shipped surrogates and tables (every method, both
latency sources, searched and fixed splits, λ = 2 and 4) and prints their records without the timing fields,
then a SHA-256 of that JSON. Two machines with the same versions of nascsim, numpy and numba
(``constraints.txt``) print the same digest when they compute the same bits (see
docs/reproducibility.md)::

    python scripts/repro_fingerprint.py            # records as JSON, then "sha256 <digest>"
    python scripts/repro_fingerprint.py --digest   # the digest alone

``tests/test_reproducibility.py`` runs :func:`fingerprint` in-process and in a child process that
imitates another CPU and compares them exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json

# (method, threshold_ms, loss, seed, options): short searches that exercise every path of the
# engine that a float can take: measured and FLOPs latency (Π of eq. 9), a fixed split, the random
# baseline, the HWNAS split choice and a λ other than 2 (only FBNet has shipped surrogates)
CASES = (
    ("nasc", 30.0, 0.2, 0, {}),
    ("nasc", 40.0, 0.0, 1, {"head": "pixel3", "source": "flops", "bits": 16.0, "bandwidth": 4e6}),
    ("nasc", 30.0, 0.0, 2, {"split_search": False, "fixed_split": 14}),
    ("nasc", 28.0, 0.1, 3, {"lam": 4}),
    ("hwnas", 30.0, 0.3, 0, {}),
    ("random", 30.0, 0.0, 0, {}),
)
TIMING_FIELDS = ("search_s", "wall_s")


def fingerprint(steps: int = 2000) -> list[dict]:
    """The records of :data:`CASES` with ``steps`` ASNG steps each, timing fields removed."""
    from nascsim.api import json_safe, search

    out = []
    for method, threshold_ms, loss, seed, options in CASES:
        rec = search(method, threshold_ms, loss, seed, steps=steps, **options)
        out.append(json_safe({k: v for k, v in rec.items() if k not in TIMING_FIELDS}))
    return out


def digest(records: list[dict]) -> str:
    """SHA-256 of the records' canonical JSON (floats written as ``repr``, which round-trips)."""
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="ASNG steps per search (default 2000)")
    parser.add_argument("--digest", action="store_true", help="print the digest only")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}")
    records = fingerprint(args.steps)
    if not args.digest:
        print(json.dumps(records, sort_keys=True, indent=1))
    print(f"sha256 {digest(records)}")


if __name__ == "__main__":
    main()
