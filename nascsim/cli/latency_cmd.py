"""``nascsim latency``, ``nascsim devices`` and ``nascsim tables build``."""

from __future__ import annotations

import json

import click

from nascsim.cli.options import classes_option, count, latency_options, tables_option
from nascsim.space import N_LAYERS


@click.command()
@click.option("--arch", required=True, help="22 ops as names or indices, comma separated (k3_e1,skip,... or 0,8,...).")
@click.option("--split", "split", required=True, type=count(0, N_LAYERS), help="Split point: 0 = after the stem, k = after layer k.")
@latency_options
@classes_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def latency(arch, split, space, head, tail, bits, bandwidth, source, tables, classes, as_json):
    """End-to-end latency T = T_head + T_comm + T_tail of one (architecture, split) (eqs. 3, 8)."""
    from nascsim.hw.latency import breakdown, build_latency_model
    from nascsim.space import arch_names, get_space, parse_arch

    sp = get_space(space)
    a = parse_arch(arch, sp)
    model = build_latency_model(sp, head, tail, source, bits, bandwidth, classes, tables)
    out = {
        "space": sp.name,
        "arch": arch_names(a, sp),
        "split": split,
        "head": head,
        "tail": tail,
        "source": model.source,
        "bits": bits,
        "bandwidth": bandwidth,
        "classes": classes,
        "tables": tables,
    }
    out.update(breakdown(model, a, split))
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"space {sp.name}, split {split}, head {head}, tail {tail}, source {model.source}")
    click.echo(f"  T_head  {out['T_head_ms']:10.4f} ms   ({out['head_flops'] / 1e6:.2f} MFLOPs)")
    click.echo(f"  T_comm  {out['T_comm_ms']:10.4f} ms   ({out['payload_elements']} elements x {bits:g} bit / {bandwidth:g} bit/s)")
    click.echo(f"  T_tail  {out['T_tail_ms']:10.4f} ms   ({out['tail_flops'] / 1e6:.2f} MFLOPs)")
    click.echo(f"  T       {out['T_ms']:10.4f} ms")
    if out["E_head_mJ"] is not None:
        click.echo(f"  E_head  {out['E_head_mJ']:10.4f} mJ")


@click.command()
@tables_option
@click.option("--json", "as_json", is_flag=True, help="Print {device: {gflops, r2}}.")
def devices(tables, as_json):
    """Compute power Π per device, fitted by least squares of latency on FLOPs (Table III; T = FLOPs / Π is eq. 8)."""
    from nascsim.hw.devices import compute_power
    from nascsim.hw.tables import load_tables

    power = compute_power(load_tables(tables))
    if as_json:
        click.echo(json.dumps({d: {"gflops": p.gflops, "r2": p.r2} for d, p in power.items()}))
        return
    click.echo(f"{'device':10s} {'Π (GFLOPS)':>12s} {'R²':>8s}")
    for d, p in power.items():
        click.echo(f"{d:10s} {p.gflops:12.4f} {p.r2:8.3f}")


@click.group()
def tables():
    """Import HW-NAS-Bench lookup tables; check a latency table file (schema: tables/README.md)."""


@tables.command("build")
@click.option("--lut", required=True, type=click.Path(dir_okay=False), help="HW-NAS-Bench pickle (read with a restricted unpickler) or its JSON export.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The .parquet file to write (e.g. my-tables.parquet).")
@click.option("--force", is_flag=True, help="Replace --out if it exists (needed to write over the shipped table).")
def tables_build(lut, out_path, force):
    """Build a table parquet from the official pickle or a JSON export of HW_metrics['fbnet'].

    Nothing is written unless the whole table validates; an existing file, the shipped
    tables/hwnasbench_fbnet_cifar.parquet included, is replaced only with --force.
    """
    from nascsim.hw.tables import build_tables

    target = build_tables(lut, out_path, overwrite=force)
    click.echo(f"wrote {target}")


@tables.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def tables_check(path):
    """Validate a table file (default: the shipped one) and list the devices it names."""
    from nascsim.hw.tables import load_tables

    t = load_tables(path)
    click.echo(f"{path or 'shipped table'}: valid; latency devices {', '.join(t.latency_devices)}; "
               f"energy devices {', '.join(t.energy_devices) or 'none'}; FC rows for {', '.join(map(str, t.classes))} classes")
