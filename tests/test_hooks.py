"""Every hookspec is documented and exercised here; the first test enforces it."""
import inspect
import sys
from datetime import datetime, timedelta, timezone

import pytest

from balrog_engine import BlobType, ConditionContext, Serve, XmlParts, hookimpl, hookspecs, load_plugins
from balrog_engine.plugins import PluginError
from balrog_engine.testing import make_engine, update_url
from balrog_engine.query import UpdateQuery


def all_hookspecs():
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("balrog_")]


def test_every_hookspec_is_documented_and_tested():
    tests = {name for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")}
    for name in all_hookspecs():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc and "Return" in doc, f"hookspec {name} must say when it is called and what it returns"
        assert f"test_hook_{name}" in tests, f"hookspec {name} has no test_hook_{name}"


# --- a minimal third-party blob type ----------------------------------------------------
class BannerBlob(BlobType):
    schema_version = 31337
    content = "xml"

    def should_serve(self, query, ctx):
        return Serve.YES

    def render_xml(self, query, update_type, ctx):
        return XmlParts("    <banner>", (f"        <text>{self.data['text']}</text>",), "    </banner>")


class BannerPlugin:
    @hookimpl
    def balrog_blob_types(self):
        return [BannerBlob]


BANNER_DATASET = {
    "rules": [{"rule_id": 1, "priority": 1, "mapping": "banner", "backgroundRate": 100, "update_type": "minor",
               "product": "Banner"}],
    "releases": [{"name": "banner", "product": "Banner",
                  "data": {"name": "banner", "schema_version": 31337, "text": "Q&A"}}],
}


def test_hook_balrog_blob_types():
    engine = make_engine(BANNER_DATASET, plugins=[BannerPlugin()])
    response = engine.get(update_url(product="Banner"))
    assert response.status == 200
    assert response.text == '<?xml version="1.0"?>\n<updates>\n    <banner>\n        <text>Q&amp;A</text>\n' \
                            '    </banner>\n</updates>'
    assert response.header("Rule-ID") == "1"


def test_duplicate_schema_version_is_a_startup_error():
    class Clash(BlobType):
        schema_version = 31337

    class ClashPlugin:
        @hookimpl
        def balrog_blob_types(self):
            return [Clash]

    with pytest.raises(PluginError, match="schema_version 31337"):
        load_plugins(extra=[BannerPlugin(), ClashPlugin()])


def test_builtin_plugins_can_be_blocked_by_name():
    registry = load_plugins()
    assert 50 in registry.blob_types
    blocked = load_plugins(blocked=["desupport"])
    assert 50 not in blocked.blob_types
    assert "desupport" not in blocked.plugin_names


def test_misspelled_hookimpl_fails_at_startup():
    class Typo:
        @hookimpl
        def balrog_blob_typez(self):
            return []

    with pytest.raises(Exception, match="balrog_blob_typez"):
        load_plugins(extra=[Typo()])


def test_hook_balrog_condition_types():
    registry = load_plugins()
    time_condition = registry.condition_types["time"]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    due = time_condition({"when": int(now.timestamp() * 1000)})
    assert due.is_met(ConditionContext(now=now))
    assert not due.is_met(ConditionContext(now=now - timedelta(seconds=1)))
    with pytest.raises(Exception, match="when"):
        time_condition({"when": "soon"})


def test_hook_balrog_storage_backends():
    registry = load_plugins()
    assert {"memory", "sqlite"} <= set(registry.storage_backends)
    created = []

    class Custom:
        @hookimpl
        def balrog_storage_backends(self):
            return {"custom": lambda url: created.append(url) or registry.storage_for("memory://")}

    load_plugins(extra=[Custom()]).storage_for("custom://somewhere")
    assert created == ["custom://somewhere"]
    with pytest.raises(PluginError, match="no storage backend"):
        registry.storage_for("nosuch://x")


def test_hook_balrog_query_normalizers():
    class LowercaseProduct:
        @hookimpl
        def balrog_query_normalizers(self):
            return [lambda q: q.replace(product=q.product.capitalize())]

    engine = make_engine(BANNER_DATASET, plugins=[BannerPlugin(), LowercaseProduct()])
    assert engine.get(update_url(product="BANNER")).header("Rule-ID") == "1"


def test_hook_balrog_response_signers():
    seen = []

    class Signer:
        @hookimpl
        def balrog_response_signers(self):
            def sign(query: UpdateQuery, body: bytes):
                seen.append(query.product)
                return ("Content-Signature", f"x5u=test; p384ecdsa={len(body)}") if query.product == "Banner" else None
            return [sign]

    engine = make_engine(BANNER_DATASET, plugins=[BannerPlugin(), Signer()])
    response = engine.get(update_url(product="Banner"))
    assert response.header("Content-Signature") == f"x5u=test; p384ecdsa={len(response.body)}"
    assert seen == ["Banner"]


def test_hook_balrog_metrics_sources():
    from balrog_engine import MetricsError, MetricsSource

    class Fixed(MetricsSource):
        name = "fixed"

        def value(self, metric, labels):
            return self.config["values"].get(f"{metric}:{labels.get('version')}")

    class FixedPlugin:
        @hookimpl
        def balrog_metrics_sources(self):
            return [Fixed]

    registry = load_plugins(extra=[FixedPlugin()])
    assert {"fixed", "http_json", "sql_table"} <= set(registry.metrics_sources)
    # A condition reads the configured source through its context, as the agent provides it.
    uptake = registry.condition_types["uptake"]({"product": "Firefox", "channel": "release", "version": "61.0",
                                                 "target": 50})
    source = registry.metrics_sources["fixed"]({"values": {"uptake:61.0": 55.0}})
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert uptake.is_met(ConditionContext(now=now, metrics={"fleet": source}))
    assert not uptake.is_met(ConditionContext(now=now, metrics={"fleet": Fixed({"values": {}})}))
    with pytest.raises(MetricsError, match="no metrics source named 'default'"):
        uptake.is_met(ConditionContext(now=now, metrics={"a": source, "b": source}))


def test_hook_balrog_notifiers():
    from balrog_engine import HeadsUp, Notifier

    received = []

    class Recorder(Notifier):
        name = "recorder"

        def notify(self, heads_up):
            received.append((self.config["channel"], heads_up.subject()))

    class RecorderPlugin:
        @hookimpl
        def balrog_notifiers(self):
            return [Recorder]

    registry = load_plugins(extra=[RecorderPlugin()])
    assert {"recorder", "smtp", "webhook"} <= set(registry.notifiers)
    when = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    registry.notifiers["recorder"]({"channel": "#releng"}).notify(
        HeadsUp(change="rules/7", enact_at=when, url="http://admin/scheduled_changes/rules/7", cancel="delete it"))
    assert received == [("#releng", "balrog: rules/7 will be enacted at 2026-01-01T12:00:00+00:00")]


@pytest.mark.parametrize("hook", ["balrog_condition_types", "balrog_metrics_sources", "balrog_notifiers"])
def test_a_name_claimed_by_two_plugins_is_a_startup_error(hook):
    def plugin(cls_name):
        cls = type(cls_name, (), {"name": "clash"})
        return type(f"{cls_name}Plugin", (), {hook: hookimpl(lambda self: [cls])})()

    with pytest.raises(PluginError, match="'clash' is claimed by plugins"):
        load_plugins(extra=[plugin("One"), plugin("Two")])
