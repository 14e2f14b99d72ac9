"""The ``balrog`` command.

    balrog serve [--db URL] [--host H] [--port P] [--config FILE]
    balrog admin [--db URL] [--host H] [--port P] [--config FILE]
    balrog agent [--agent-config FILE] [--once]
    balrog db load FILE.json [--db URL]
    balrog db upgrade [--db URL]
    balrog db dump [--db URL] [-o FILE]
    balrog db restore FILE [--db URL]
    balrog plugins
    balrog explain URL [--db URL] [--user-agent UA] [--json] [--all]
    balrog lint [--db URL] [--json]

``balrog serve`` with no arguments serves an embedded SQLite database
(``balrog.db`` in the current directory), loading demo data into it when it is empty.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from balrog_engine import BlobValidationError, Engine, PluginRegistry, flatten_errors, load_plugins
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


def cmd_db_dump(args) -> int:
    settings = _settings(args)
    to_stdout = args.output in (None, "-")
    if to_stdout:
        _log_to_stderr()  # the dump owns standard output (a first use logs the schema migration)
    registry = load_plugins(blocked=settings.block_plugins)
    storage = registry.storage_for(settings.db)
    try:
        document = storage.dump()
    except NotImplementedError:
        print(f"{settings.db}: this storage backend cannot dump", file=sys.stderr)
        return 2
    finally:
        storage.close()
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if to_stdout:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    rows = sum(len(table_rows) for table_rows in document["tables"].values())
    print(f"dumped {len(document['tables'])} tables ({rows} rows) of {settings.db} to {args.output}")
    return 0


def cmd_db_restore(args) -> int:
    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    try:
        document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"refused {args.file}: cannot read JSON: {exc}", file=sys.stderr)
        return 2
    problems = dump_blob_problems(document, registry)
    if problems:
        for problem in problems:
            print(f"refused {args.file}: {problem}", file=sys.stderr)
        return 2
    storage = registry.storage_for(settings.db)
    try:
        storage.restore(document)
    except NotImplementedError:
        print(f"{settings.db}: this storage backend cannot restore dumps", file=sys.stderr)
        return 2
    except DatasetRejected as exc:
        print(f"refused {args.file}: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()
    tables = document["tables"]
    print(f"restored {sum(len(rows) for rows in tables.values())} rows ({len(tables.get('rules', []))} rules, "
          f"{len(tables.get('releases', []))} releases) into {settings.db}")
    return 0


def _log_to_stderr() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


#: Dumped tables holding release blobs, and the column that holds them.
DUMP_BLOB_COLUMNS = (("releases", "data", "name"), ("releases_scheduled_changes", "base_data", "sc_id"))


def dump_blob_problems(document, registry: PluginRegistry) -> list[str]:
    """Every release blob of a dump (``releases.data``, ``releases_scheduled_changes.base_data``
    when not null) checked by its blob type, as for ``db load``: one line per problem, naming
    the table, row and field. The rest of the dump is the storage's to check."""
    tables = document.get("tables") if isinstance(document, dict) else None
    if not isinstance(tables, dict):
        return []  # not a dump: the storage refuses it with the reason
    problems = []
    for table, column, key in DUMP_BLOB_COLUMNS:
        rows = tables.get(table)
        for index, row in enumerate(rows if isinstance(rows, list) else []):
            if not isinstance(row, dict) or row.get(column) is None:
                continue
            where = f"{table}[{index}]" + (f" ({key}={row[key]!r})" if key in row else "")
            data = row[column]
            if not isinstance(data, dict):
                problems.append(f"{where}: {column}: a release blob must be a JSON object")
                continue
            blob_type = registry.blob_type(data.get("schema_version"))
            if blob_type is None:
                problems.append(f"{where}: {column}.schema_version: no blob type for {data.get('schema_version')!r}")
                continue
            try:
                blob_type.validate(data)
            except BlobValidationError as exc:
                problems.extend(f"{where}: {path}: {message}" for path, message in flatten_errors(exc.errors, column))
    return problems


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


def cmd_admin(args) -> int:
    import waitress

    from .admin.app import AdminContext, create_admin_app
    from .admin.auth import JWKSVerifier, StaticTokens

    settings = _settings(args)
    if settings.auth_issuer and settings.auth_audience:
        issuer = settings.auth_issuer if settings.auth_issuer.endswith("/") else settings.auth_issuer + "/"
        verifier = JWKSVerifier(issuer, settings.auth_audience,
                                jwks_url=settings.auth_jwks_url or f"{issuer}.well-known/jwks.json",
                                userinfo_url=settings.auth_userinfo_url or f"{issuer}userinfo",
                                m2m_accounts=settings.auth_m2m_accounts or {})
        mode = f"tokens from {issuer} for audience {settings.auth_audience}"
    elif settings.admin_tokens_file:
        verifier = StaticTokens(json.loads(Path(settings.admin_tokens_file).read_text()))
        mode = f"static development tokens from {settings.admin_tokens_file}"
    else:
        print("refusing to start an admin API nobody can log in to: set auth_issuer and auth_audience "
              "(OIDC/Auth0), or admin_tokens_file (development)", file=sys.stderr)
        return 2
    registry = load_plugins(blocked=settings.block_plugins)
    storage = registry.storage_for(settings.db)
    ctx = AdminContext(storage, registry, verifier, system_accounts=frozenset(settings.system_accounts),
                       allowlisted_domains=settings.allowlisted_domains or {},
                       cors_origins=settings.cors_origins,
                       strict_transport_security=settings.strict_transport_security,
                       max_body_bytes=settings.max_body_bytes,
                       enact_due_only_for_system_accounts=settings.enact_due_only_for_system_accounts,
                       special_force_hosts=settings.special_force_hosts)
    app = create_admin_app(ctx)
    port = args.port or settings.admin_port
    print(f"balrog-engine admin API on http://{settings.host}:{port} ({settings.db}; {mode})")
    sys.stdout.flush()
    waitress.serve(app, host=settings.host, port=port, threads=settings.threads, ident="balrog-engine-admin",
                   _quiet=True)
    return 0


def cmd_agent(args) -> int:
    """The agent: enacts scheduled changes through the admin API (docs/agent.md). Its own
    configuration: ``--agent-config``, ``BALROG_AGENT_CONFIG``, or the ``[agent]`` table of the
    ``--config`` file; the environment overrides it."""
    from .agent.main import run

    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    shared = getattr(args, "config", None) or os.environ.get("BALROG_CONFIG")
    return run(registry, args.agent_config, shared, once=args.once)


def cmd_plugins(args) -> int:
    settings = _settings(args)
    registry = load_plugins(blocked=settings.block_plugins)
    print(json.dumps({
        "plugins": list(registry.plugin_names),
        "blob_types": {str(k): f"{v.__module__}.{v.__qualname__}" for k, v in sorted(registry.blob_types.items())},
        "condition_types": sorted(registry.condition_types),
        "metrics_sources": sorted(registry.metrics_sources),
        "notifiers": sorted(registry.notifiers),
        "storage_backends": sorted(registry.storage_backends),
    }, indent=2))
    return 0


def _explainable(settings: Settings):
    """A ServerState of the database, read as the public server reads it (same settings)."""
    from balrog_engine import ServerState

    registry = load_plugins(blocked=settings.block_plugins)
    storage = registry.storage_for(settings.db)
    try:
        return ServerState.from_storage(storage, registry, settings.deployment_overrides())
    finally:
        storage.close()


def cmd_explain(args) -> int:
    """How the public server answers one update URL, and why (docs/explain.md). Exit 0, or 2 when
    the URL is no update query."""
    from balrog_engine import ExplainInputError, explain

    settings = _settings(args)
    _log_to_stderr()  # the explanation owns standard output
    state = _explainable(settings)
    try:
        explanation = explain(state, args.url, args.user_agent or "")
    except ExplainInputError as exc:
        print(f"balrog explain: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(explanation.to_json(), indent=2, ensure_ascii=False))
    else:
        print(explanation.text(all_rules=args.all))
    return 0


def cmd_lint(args) -> int:
    """Rules an earlier rule always beats (docs/explain.md). Exit 0 when there are none, 1 when
    there are findings (like other linters, so scripts and CI can gate on it)."""
    from balrog_engine import lint

    settings = _settings(args)
    _log_to_stderr()
    findings = lint(_explainable(settings))
    if args.json:
        print(json.dumps({"count": len(findings), "findings": [f.to_json() for f in findings]}, indent=2,
                         ensure_ascii=False))
    else:
        for finding in findings:
            print(finding.text())
        print(f"{len(findings)} rule(s) can never match" if findings else "no shadowed rules")
    return 1 if findings else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="balrog", description="Balrog-compatible update server")
    parser.add_argument("--config", help="TOML settings file (also BALROG_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the public update API with waitress")
    serve.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    admin = sub.add_parser("admin", help="serve the admin REST API with waitress (needs auth settings)")
    admin.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    admin.add_argument("--host")
    admin.add_argument("--port", type=int, help="default: the admin_port setting (9011)")
    admin.set_defaults(func=cmd_admin)

    agent = sub.add_parser("agent", help="enact scheduled changes when their conditions hold (admin API client)")
    agent.add_argument("--agent-config", help="agent configuration, TOML or JSON (also BALROG_AGENT_CONFIG)")
    agent.add_argument("--once", action="store_true", help="run one cycle and exit (1 if anything failed)")
    agent.set_defaults(func=cmd_agent)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    load = db_sub.add_parser("load", help="load a dataset (scenario format), replacing the database contents")
    load.add_argument("file")
    load.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    load.set_defaults(func=cmd_db_load)
    upgrade = db_sub.add_parser("upgrade", help="migrate the database to the current schema (creating it when empty)")
    upgrade.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    upgrade.set_defaults(func=cmd_db_upgrade)
    dump = db_sub.add_parser("dump", help="write every table, history included, as JSON (restore takes it back)")
    dump.add_argument("--db", "--database", dest="db", help="database URL (default sqlite:///balrog.db)")
    dump.add_argument("-o", "--output", help="file to write (default: standard output)")
    dump.set_defaults(func=cmd_db_dump)
    restore = db_sub.add_parser("restore", help="replace the database contents with a dump, after validating all of it")
    restore.add_argument("file")
    restore.add_argument("--db", "--database", dest="db", help="database URL (default sqlite:///balrog.db)")
    restore.set_defaults(func=cmd_db_restore)

    plugins = sub.add_parser("plugins", help="list the plugins and what they contribute")
    plugins.set_defaults(func=cmd_plugins)

    explain = sub.add_parser("explain", help="explain how the public server answers an update URL, and why")
    explain.add_argument("url", help="update URL path as a client sends it (/update/6/…/update.xml?force=1)")
    explain.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    explain.add_argument("--user-agent", help="the client's User-Agent (only Darwin PPC detection reads it)")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("--all", action="store_true",
                         help="also list the rules of other products and channels")
    explain.set_defaults(func=cmd_explain)

    lint = sub.add_parser("lint", help="list rules that can never match (exit 1 when there are some)")
    lint.add_argument("--db", help="database URL (default sqlite:///balrog.db)")
    lint.add_argument("--json", action="store_true", help="print the findings as JSON")
    lint.set_defaults(func=cmd_lint)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    setup_logging(settings.log_format)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
