"""The ``alignpatterns`` command: ``synth``, ``check-data``, ``info``, ``heldout``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _synth(args) -> int:
    from alignpatterns.synth.dataset import synthesize

    truth = synthesize(args.out, seed=args.seed, subjects=args.subjects, rois=args.rois,
                       train=args.train, test=args.test, n_frames=args.n_frames,
                       size=args.size)
    print(f"wrote {args.out}: {len(truth['subjects'])} subjects, {len(truth['rois'])} ROIs, "
          f"{truth['n_train']} train + {truth['n_test']} test videos; generator "
          f"{truth['generator']} (seed {truth['generator_seed']})")
    return 0


def _validated_config(paths: str | list[str]) -> dict:
    """Read configs, each merged over the previous one (as Snakemake's ``--configfile a b``;
    e.g. a dataset config and then a preset), and validate the result."""
    from alignpatterns.config import load_config, merge_config, validate_config

    paths = [paths] if isinstance(paths, str) else list(paths)
    cfg: dict = {}
    for path in paths:
        merge_config(cfg, load_config(path))
    return validate_config(cfg, " + ".join(paths))


def _check_data(args) -> int:
    import tempfile

    from alignpatterns import pipeline
    from alignpatterns.config import resolve_config

    cfg = resolve_config(_validated_config(args.config), counts=False)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    table = pipeline.check_data(cfg, str(out / "check_data.parquet"), str(out / "dataset.json"))
    with_missing = table[table["missing"]]
    print(table.to_string(index=False))
    print(f"{len(table)} subject x ROI cells, {len(with_missing)} missing; "
          f"summary in {out / 'check_data.parquet'}")
    return 0


def _info(args) -> int:
    from alignpatterns.io import config_hash, provenance, read_provenance

    now = provenance()
    for k, v in now.items():
        print(f"{k}: {v}")
    if args.config:
        print(f"config_hash: {config_hash(_validated_config(args.config))}")
    for table in args.table or []:
        stored = read_provenance(table)
        print(f"\n{table}:")
        for k, v in sorted(stored.items()):
            differs = k in now and now[k] != v
            print(f"  {k}: {v}" + (f"  (installed now: {now[k]})" if differs else ""))
    return 0


def _heldout(args) -> int:
    from alignpatterns.config import resolve_config
    from alignpatterns.io import write_table
    from alignpatterns.patterns.heldout import heldout_from_results, heldout_outcome

    cfg = resolve_config(_validated_config(args.config))
    _, summary = heldout_from_results(cfg, args.results, args.subject, args.measure,
                                      args.variant)
    write_table(summary, args.out, "apa_summary", cfg)
    outcome = heldout_outcome(summary, args.subject)
    print(outcome.to_string(index=False))
    print(f"held-out sub-{args.subject}: own ROI passes in "
          f"{outcome['own_passes'].astype(float).mean():.0%} of cells, other ROIs fail in "
          f"{outcome['others_fail'].mean():.0%}; table in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``alignpatterns`` console script."""
    p = argparse.ArgumentParser(prog="alignpatterns", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("synth", help="write a synthetic dataset in the BMD on-disk format")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--subjects", type=int, default=6)
    s.add_argument("--rois", type=int, default=10)
    s.add_argument("--train", type=int, default=200)
    s.add_argument("--test", type=int, default=60)
    s.add_argument("--n-frames", type=int, default=4)
    s.add_argument("--size", type=int, default=112)
    s.set_defaults(fn=_synth)
    c = sub.add_parser("check-data", help="validate a dataset against a config")
    c.add_argument("--config", required=True, nargs="+",
                   help="config file(s); later ones (e.g. config/presets/paper.yaml) are merged "
                        "over earlier ones")
    c.add_argument("--out", default=None, help="folder for the summary (default: a temp dir)")
    c.set_defaults(fn=_check_data)
    i = sub.add_parser("info", help="print versions (and a config's hash, a table's provenance)")
    i.add_argument("--config", default=None, nargs="+",
                   help="also print the hash of this config (files merged in order)")
    i.add_argument("--table", action="append", default=None, metavar="PARQUET",
                   help="also print the provenance a result table records (repeatable)")
    i.set_defaults(fn=_info)
    h = sub.add_parser("heldout", help="score a held-out subject's ROIs as APA candidates on "
                       "the other subjects of a workflow run")
    h.add_argument("--config", required=True, help="the run's config")
    h.add_argument("--results", default="results", help="the run's results folder")
    h.add_argument("--subject", required=True, help="the held-out subject, e.g. 07")
    h.add_argument("--measure", action="append", default=None,
                   help="measure (repeatable; default: the config's)")
    h.add_argument("--variant", action="append", default=None,
                   help="APA variant (repeatable; default: the config's)")
    h.add_argument("--out", required=True, help="apa_summary-format Parquet table to write")
    h.set_defaults(fn=_heldout)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
