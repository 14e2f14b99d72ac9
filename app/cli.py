"""The ``balrog`` command.

    balrog serve [--db URL] [--host H] [--port P] [--config FILE]
    balrog db load FILE.json [--db URL]
    balrog db upgrade [--db URL]
    balrog plugins

``balrog serve`` with no arguments serves an embedded SQLite database
(``balrog.db`` in the current directory), loading demo data into it when it is empty.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from balrog_engine import Engine, load_plugins
from balrog_engine.config import Settings, load_settings
from balrog_engine.dataset import DatasetError, load_dataset_file
from balrog_engine.storage import DatasetRejected

from .observability import setup_logging

DEMO_DATASET = Path(__file__).parent / "static" / "demo-dataset.json"
DEMO_URL = ("/update/6/Firefox/66.0.2/20170031010842/WINNT_x86_64-msvc/en-US/release/"
            "Windows_NT%2010.0.0.0.19044.1766%20(x64)/ISET:SSE4_2,MEM:16384/default/default/update.xml")

log = logging.getLogger("balrog.cli")


def _settings(args) -> Settings:
    return load_settings(getattr(args, "config", None), db=getattr(args, "db", None),
                         host=getattr(args, "host", None), port=getattr(args, "port", None))


def cmd_db_load(args) -> int:
    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    try:
        dataset = load_dataset_file(args.file, registry)
    except DatasetError as exc:
        print(f"refused {args.file}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    storage = registry.storage_for(settings.db)
    try:
        storage.replace_all(dataset)
    except DatasetRejected as exc:
        print(f"refused {args.file}: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()
    print(f"loaded {len(dataset.rules)} rules, {len(dataset.releases)} releases, {len(dataset.pins)} pins, "
          f"{len(dataset.emergency_shutoffs)} shutoffs into {settings.db}")
    return 0


def cmd_db_upgrade(args) -> int:
    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    storage = registry.storage_for(settings.db)
    if not hasattr(storage, "upgrade"):
        print(f"{settings.db}: this storage backend has no schema to upgrade", file=sys.stderr)
        return 2
    try:
        before = storage.schema_revision()
        after = storage.upgrade()
    finally:
        storage.close()
    print(f"schema revision before: {before or 'none'}")
    print(f"schema revision after: {after}")
    print(f"{settings.db} is up to date" if before == after else f"upgraded {settings.db} from {before or 'none'} to {after}")
    return 0


def cmd_serve(args) -> int:
    import waitress

    from .public import create_app

    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    storage = registry.storage_for(settings.db)
    if settings.load_demo_data and not storage.rules() and not storage.release_summaries():
        storage.replace_all(load_dataset_file(DEMO_DATASET, registry))
        print(f"empty database: loaded the demo dataset into {settings.db}")
    engine = Engine(storage, registry, settings, freeze_gc=True)
    engine.start()
    app = create_app(engine)
    base = f"http://{settings.host}:{settings.port}"
    print(f"balrog-engine serving {len(engine.snapshot)} rules from {settings.db} on {base}")
    print(f"try: curl '{base}{DEMO_URL}'")
    sys.stdout.flush()
    waitress.serve(app, host=settings.host, port=settings.port, threads=settings.threads, ident="balrog-engine",
                   _quiet=True)
    return 0


def cmd_plugins(args) -> int:
    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    print(json.dumps({
        "plugins": list(registry.plugin_names),
        "blob_types": {str(k): f"{v.__module__}.{v.__qualname__}" for k, v in sorted(registry.blob_types.items())},
        "condition_types": sorted(registry.condition_types),
        "storage_backends": sorted(registry.storage_backends),
    }, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="balrog", description="Balrog-compatible update server")
    parser.add_argument("--config", help="TOML settings file (also BALROG_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the public update API with waitress")
    serve.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    load = db_sub.add_parser("load", help="load a dataset (scenario format), replacing the database contents")
    load.add_argument("file")
    load.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    load.set_defaults(func=cmd_db_load)
    upgrade = db_sub.add_parser("upgrade", help="migrate the database to the current schema (creating it when empty)")
    upgrade.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    upgrade.set_defaults(func=cmd_db_upgrade)

    plugins = sub.add_parser("plugins", help="list the plugins and what they contribute")
    plugins.set_defaults(func=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    setup_logging(settings.log_format)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
