"""``kgrec data list|stats|recipe`` and ``kgrec config``."""

from __future__ import annotations

import argparse
import sys

from kgrec.cli.common import (
    add_config_args,
    add_format,
    config_from_args,
    lazy,
    splits_help,
    table,
)


def cmd_data_list(args: argparse.Namespace) -> int:
    from kgrec.ingest import Recipe, list_datasets
    from kgrec.ingest.recipe import recipe_path

    rows = []
    for name in list_datasets():
        r = Recipe.load(recipe_path(name))
        rows.append([name, r.format, r.path, " ".join(r.description.split())])
    table("datasets (loaders/*.yaml)", ["name", "format", "folder", "description"], rows)
    return 0


def cmd_data_recipe(args: argparse.Namespace) -> int:
    from kgrec.ingest.spec import reference

    print(reference(args.format))
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from kgrec.config import DataConfig
    from kgrec.data.prepare import split_for
    from kgrec.ingest import load_source

    graph = load_source(args.name, args.data_dir)
    st = graph.stats()
    rows = []
    for k, v in st.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                rows.append([f"{k}.{kk}", vv])
        else:
            rows.append([k, v])
    table(f"{graph.name}", ["statistic", "value"], rows)
    unused = st.get("items_without_interactions", 0)
    if unused:
        print(f"{unused:,} of {graph.num_items:,} catalogue items have no interaction: they "
              "are always cold (ranked from content alone, if the model reads any). To drop "
              "them, set `drop_items_without_interactions: true` in the recipe.")
    if args.split:
        s = split_for(DataConfig(dataset=args.name, split=args.split, data_dir=args.data_dir),
                      graph)
        table(f"split {args.split}", ["part", "pairs"], [[k, v] for k, v in s.summary().items()])
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    sys.stdout.write(cfg.to_yaml())
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``data`` (``list``, ``stats``, ``recipe``) and ``config``."""
    d = sub.add_parser("data", help="datasets: list, stats")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    dl = dsub.add_parser("list", help="the bundled dataset recipes")
    add_format(dl)
    dl.set_defaults(func=cmd_data_list)
    ds = dsub.add_parser("stats", help="statistics of one dataset (parses it once, then cached)")
    ds.add_argument("name", help="dataset name or recipe path")
    ds.add_argument("--data-dir")
    ds.add_argument("--split", help=lazy(splits_help, "also show the sizes of this split: {}"))
    add_format(ds)
    ds.set_defaults(func=cmd_data_stats)
    from kgrec.ingest.spec import FORMATS

    dr = dsub.add_parser("recipe", help="the recipe reference: every field, file role and "
                         "mapping key of every format, with an example each",
                         description="What a dataset recipe (loaders/*.yaml, or your own for "
                         "kgrec.load_recipe) may say. Unknown keys are refused, each named "
                         "with its line.")
    dr.add_argument("format", nargs="?", choices=sorted(FORMATS),
                    help="only this format's part")
    dr.set_defaults(func=cmd_data_recipe)

    c = sub.add_parser("config", help="print the full config (defaults + your overrides) as YAML")
    add_config_args(c)
    c.set_defaults(func=cmd_config)
