"""The public app's behaviour beyond the recorded scenarios: cache, metrics, resilience, bad input."""
import json
from pathlib import Path

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import event

from balrog_engine import Engine, load_plugins
from balrog_engine.config import Settings
from balrog_engine.dataset import parse_dataset
from balrog_app.public import create_app
from tests.conformance.harness import call_wsgi

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench"
REGISTRY = load_plugins()


@pytest.fixture(scope="module")
def bench_doc():
    return json.loads((BENCH / "dataset.json").read_text())


@pytest.fixture(scope="module")
def bench_urls():
    return [u for u in (BENCH / "urls.txt").read_text().splitlines() if u]


def engine_for(doc, url="memory://", **settings):
    storage = REGISTRY.storage_for(url)
    storage.replace_all(parse_dataset(doc, REGISTRY))
    return Engine(storage, REGISTRY, Settings(db=url, access_log=False, **settings))


def test_cache_serves_identical_requests_from_memory(bench_doc, bench_urls):
    engine = engine_for(bench_doc)
    app = create_app(engine)
    first = [call_wsgi(app, u) for u in bench_urls[:50]]
    cached = len(engine.protocol.cache)
    assert cached == 50
    again = [call_wsgi(app, u) for u in bench_urls[:50]]
    assert [(r.status, r.body) for r in first] == [(r.status, r.body) for r in again]
    assert len(engine.protocol.cache) == cached


def test_cache_matches_uncached_answers(bench_doc, bench_urls):
    cached = create_app(engine_for(bench_doc))
    uncached = create_app(engine_for(bench_doc, response_cache_size=0))
    for url in bench_urls[:300]:
        a, b = call_wsgi(cached, url), call_wsgi(uncached, url)
        assert (a.status, a.headers, a.body) == (b.status, b.headers, b.body)


def small_dataset(rate=100, mapping="R2"):
    blob = lambda name, version, build: {"name": name, "schema_version": 1, "hashFunction": "sha512",
                                         "appv": version, "extv": version,
                                         "platforms": {"p": {"buildID": build, "locales": {"l": {
                                             "complete": {"from": "*", "filesize": 1, "hashValue": "h",
                                                          "fileUrl": "http://a.com/c"}}}}}}
    return {
        "config": {"allowlisted_domains": {"a.com": ["b"]}},
        "rules": [{"rule_id": 1, "priority": 10, "mapping": mapping, "fallbackMapping": "R1", "backgroundRate": rate,
                   "update_type": "minor", "product": "b", "channel": "c"}],
        "releases": [{"name": "R1", "product": "b", "data": blob("R1", "1.5", "15")},
                     {"name": "R2", "product": "b", "data": blob("R2", "2.0", "20")}],
    }


URL = "/update/3/b/1.0/1/p/l/c/a/a/a/update.xml"


def test_dice_answers_are_never_cached():
    storage = REGISTRY.storage_for("memory://")
    storage.replace_all(parse_dataset(small_dataset(rate=50), REGISTRY))
    rolls = iter([0, 99] * 10)
    engine = Engine(storage, REGISTRY, Settings(access_log=False), roll=lambda: next(rolls))
    versions = {engine.get(URL).text.split('extensionVersion="')[1][:3] for _ in range(4)}
    assert versions == {"2.0", "1.5"}
    assert len(engine.protocol.cache) == 0


def test_snapshot_swap_invalidates_cache_and_shows_changes():
    engine = engine_for(small_dataset())
    assert 'version="2.0"' in engine.get(URL).text
    engine.storage.replace_all(parse_dataset(small_dataset(mapping="R1"), REGISTRY))
    assert 'version="2.0"' in engine.get(URL).text  # still the old snapshot until refresh
    assert engine.refresh() is True
    assert 'version="1.5"' in engine.get(URL).text


def test_steady_state_makes_no_database_queries(bench_doc, bench_urls, tmp_path):
    engine = engine_for(bench_doc, url=f"sqlite:///{tmp_path}/bench.db", response_cache_size=0)
    app = create_app(engine)
    queries = []
    event.listen(engine.storage.engine, "before_cursor_execute", lambda *a, **k: queries.append(a[2]))
    statuses = {call_wsgi(app, u).status for u in bench_urls}
    assert statuses == {200}
    assert queries == []
    engine.refresh()  # the poller: exactly one cheap query when nothing changed
    selects = [q for q in queries if q != "BEGIN"]
    assert len(selects) == 1 and "change_counter" in selects[0]


class FlakyStorage:
    """Wraps a storage; when ``down`` is set every read fails like a lost database."""

    def __init__(self, inner):
        self.inner, self.down = inner, False

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if callable(attr) and name not in ("close",):
            def guarded(*args, **kwargs):
                if self.down:
                    raise ConnectionError("database went away")
                return attr(*args, **kwargs)
            return guarded
        return attr

    def ping(self):
        return not self.down


def test_database_loss_keeps_serving_and_heartbeat_says_so():
    inner = REGISTRY.storage_for("memory://")
    inner.replace_all(parse_dataset(small_dataset(), REGISTRY))
    storage = FlakyStorage(inner)
    engine = Engine(storage, REGISTRY, Settings(access_log=False, response_cache_size=0))
    client = falcon.testing.TestClient(create_app(engine).wsgi)
    assert client.simulate_get("/__heartbeat__").status_code == 200
    storage.down = True
    assert engine.refresh() is False
    assert engine.holder.last_error and "database went away" in engine.holder.last_error
    heartbeat = client.simulate_get("/__heartbeat__")
    assert heartbeat.status_code == 502 and heartbeat.text == "Can't connect to the database."
    assert 'version="2.0"' in client.simulate_get(URL).text
    storage.down = False
    engine.refresh()
    assert client.simulate_get("/__heartbeat__").status_code == 200


def test_metrics(bench_doc, bench_urls):
    app = create_app(engine_for(bench_doc))
    for url in bench_urls[:20]:
        call_wsgi(app, url)
    call_wsgi(app, "/update/3/NoSuchProduct/1.0/1/p/l/zzz/a/a/a/update.xml")
    metrics = call_wsgi(app, "/__metrics__")
    text = metrics.body.decode()
    assert metrics.status == 200
    assert 'balrog_update_requests_total{channel="release",outcome="update",product="Firefox"}' in text
    assert 'balrog_update_requests_total{channel="other",outcome="no_update",product="other"} 1.0' in text
    assert "balrog_update_request_seconds_bucket" in text
    assert "balrog_snapshot_age_seconds" in text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "FOO", "PROPFIND"])
def test_other_methods_are_405(method):
    app = create_app(engine_for(small_dataset()))
    for path in (URL, "/__heartbeat__", "/api/v1/rules"):
        got = call_wsgi(app, path, method=method)
        assert got.status == 405, (path, method)
        assert got.header("Allow") == "OPTIONS, HEAD, GET"
        assert json.loads(got.body)["title"] == "Method Not Allowed"


def test_head_and_options_on_update():
    app = create_app(engine_for(small_dataset()))
    head = call_wsgi(app, URL, method="HEAD")
    assert head.status == 200 and head.body == b"" and head.header("Rule-ID") == "1"
    options = call_wsgi(app, URL, method="OPTIONS")
    assert options.status == 200 and options.header("Allow") == "OPTIONS, HEAD, GET"


FUZZ_APP = None


def fuzz_app():
    global FUZZ_APP
    if FUZZ_APP is None:
        FUZZ_APP = create_app(engine_for(json.loads((BENCH / "dataset.json").read_text())))
    return FUZZ_APP


segment = st.one_of(
    st.sampled_from(["update", "json", "1", "2", "3", "6", "Firefox", "GMP", "release", "update.xml",
                     "update.json", "66.0", "60.0esr", "4.*", "%", "%2F", "%C3%28", "%FF", "..", "", "x86 en-US",
                     "ISET:SSE4_2,MEM:-1,JAWS:x", "WINNT_x86_64-msvc", "Darwin_x86_64-gcc3", "api", "v1", "rules",
                     "releases", "revisions", "builds"]),
    st.text(min_size=0, max_size=12),
)
query = st.lists(st.tuples(st.sampled_from(["force", "pin", "mig64", "avast", "x", "FORCE", "page", "limit",
                                            "product", "names_only", "pretty", "%C3%28"]),
                           st.text(max_size=8)), max_size=4)


@hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, min_size=1, max_size=14), query)
def test_random_requests_never_5xx(segments, params):
    path = "/" + "/".join(segments)
    path = path.encode("utf-8", "surrogatepass").decode("latin-1", "replace")
    qs = "&".join(f"{k}={v}" for k, v in params)
    got = call_wsgi(fuzz_app(), path + ("?" + qs if qs else ""))
    assert got.status < 500, (path, qs, got.status, got.body[:200])


def test_static_files_answer_conditional_gets():
    client = falcon.testing.TestClient(create_app(engine_for(small_dataset())).wsgi)
    first = client.simulate_get("/robots.txt")
    assert first.status_code == 200 and first.headers["etag"]
    again = client.simulate_get("/robots.txt", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and "content-type" not in again.headers
    other = client.simulate_get("/robots.txt", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.text == first.text
