"""Query building and normalisation (public-api.md §3.1–§3.4)."""
import pytest

from balrog_engine.query import (
    Force, QueryError, build_update_query, match_json_path, match_update_path, params_for, parse_force,
    parse_query_string, parse_system_capabilities, validate_params,
)


@pytest.mark.parametrize("raw,expected", [
    ("SSE3", ("SSE3", None, None)), ("SSE3,8095", ("SSE3", 8095, None)), ("ISET:SSE2,MEM:6321", ("SSE2", 6321, None)),
    ("ISET:SSE2,MEM:6321,JAWS:1", ("SSE2", 6321, True)), ("ISET:SSE3,MEM:8096,JAWS:0", ("SSE3", 8096, False)),
    ("NA", ("NA", None, None)), ("ISET:SSE2,MEM:-nan(ind)", ("SSE2", None, None)),
    ("ISET:SSE2,MEM:8.1023", ("SSE2", None, None)), ("ISET:SSE2,MEM:unknown", ("SSE2", None, None)),
    ("ISET:SSE3,MEM:6721,PROC:Intel", ("SSE3", 6721, None)),
    ("ISET:SSE4_2,MEM:32768,(select*from(select(sleep(20)))a)", ("SSE4_2", 32768, None)),
    ("ISET:SSE3,MEM:16268,JAWS:0'\"garbage", ("SSE3", 16268, None)), ("JAWS:1", ("JAWS:1", None, None)),
    ("a,b,c", (None, None, None)),
])
def test_system_capabilities_table(raw, expected):
    assert parse_system_capabilities(raw) == expected


@pytest.mark.parametrize("value,expected", [
    ("1", Force.MAIN), ("-1", Force.FALLBACK), ("0", None), ("true", None), ("1)", None), ("", None), (None, None),
    ("1?avast=1", Force.MAIN), ("1%3Favast=1", Force.MAIN), ("1?avast=", Force.MAIN), ("1?avast", Force.MAIN),
    ("avast", None),
])
def test_force(value, expected):
    assert parse_force(value) is expected


def test_last_parameter_wins_and_unknown_names_are_refused_sorted():
    assert parse_query_string("force=1&force=-1") == {"force": "-1"}
    with pytest.raises(QueryError, match="Extra query parameter\\(s\\) bar, foo not in spec"):
        validate_params(parse_query_string("foo=1&bar=2&force=1"), params_for("xml", "6"))
    with pytest.raises(QueryError, match="pin not in spec"):
        validate_params({"pin": "1."}, params_for("xml", "2"))
    with pytest.raises(QueryError) as empty:
        validate_params({"pin": ""}, params_for("xml", "6"))
    assert empty.value.title == "Bad Request"


def test_templates():
    assert match_update_path("6 b 1.0 1 p l a a a a a update.xml".split())[0] == "6"
    assert match_update_path("6 b 1.0 1 p l a a a a update.xml".split()) is None
    assert match_update_path("3 b 1.0esrpre 1 p l a a a a update.xml".split())[1]["version"] == "1.0"
    assert match_update_path("7 b 1.0 1 p l a update.xml".split()) is None
    assert match_update_path(["1", "b", "", "1", "p", "l", "a", "update.xml"]) is None
    assert match_json_path("1 Guardian 1.0 WINNT release update.json".split())[0] == "1"
    assert match_json_path("3 Guardian 1.0 WINNT release update.json".split()) is None


def test_normalisation():
    fields = dict(product="Firefox", version="1.0", buildID="1", buildTarget="Darwin_PPC", locale="x86 de",
                  channel="release", osVersion="os\u00e9v")
    q = build_update_query("2", fields, {"mig64": "0"}, "Mozilla/5.0 (Macintosh; PPC)")
    assert (q.locale, q.osVersion, q.headerArchitecture, q.mig64, q.instructionSet) == ("de", "os?v", "PPC", False, "")
    q1 = build_update_query("1", {k: v for k, v in fields.items() if k != "osVersion"}, {}, "")
    assert (q1.osVersion, q1.headerArchitecture, q1.mig64, q1.distVersion) == ("", "Intel", None, None)
