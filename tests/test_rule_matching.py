"""The matching tables of rule-matching.md §3–§4 and checklist §15, against the compiled rule index."""
import pytest

from balrog_engine.matching import (
    compile_exact_list, compile_int_expression, compile_os_version, compile_string_expression, fallback_channel,
    glob_match,
)
from balrog_engine.query import Force, UpdateQuery
from balrog_engine.rules import RuleError, RuleIndex


def query(**kw) -> UpdateQuery:
    base = dict(product="p", version="1.0", buildTarget="t", channel="release", buildID="20200101000000",
                locale="en-US", osVersion="Windows_NT 10.0", distribution="default", distVersion="default",
                instructionSet="SSE4_2", memory=8000, headerArchitecture="Intel", queryVersion=6)
    base.update(kw)
    return UpdateQuery(**base)


def rule(rule_id=1, priority=100, **kw):
    row = dict(rule_id=rule_id, priority=priority, mapping="m", backgroundRate=100, update_type="minor", data_version=1)
    row.update(kw)
    return row


def winner(rules, **q):
    chosen = RuleIndex(rules).select(query(**q))
    return None if chosen is None else chosen.rule_id


@pytest.mark.parametrize("channel,expected", [
    ("release-cck-yahoo", "release"), ("release-cck-a-cck-b", "release"), ("release-cck-", "release"),
    ("beta", "beta"), ("-cck-x", ""),
])
def test_fallback_channel(channel, expected):
    assert fallback_channel(channel) == expected


@pytest.mark.parametrize("pattern,channel,match", [
    ("release", "release", True), ("release", "release-cck-foo", True), ("release", "release-cck-foo-cck-bar", True),
    ("release", "release-cck-", True), ("release", "releasefoo", False), ("release", "Release", False),
    ("beta*", "beta", True), ("beta*", "betatest", True), ("beta*", "beta-cck-x", True), ("beta*", "bet", False),
    ("b*", "b", False), ("b*", "bx", False), ("b*", "beta", False), ("*", "anything", False),
    ("re.ease*", "release", False), ("release*", "releasetest-cck-blah", True),
])
def test_channel_table(pattern, channel, match):
    assert (winner([rule(channel=pattern)], channel=channel) == 1) is match


@pytest.mark.parametrize("expr,value,match", [
    ("20190101000000", "20190101000000", True), (">20180101000000", "20190101000000", True),
    ("<=20190101000000", "20190101000000", True), ("<20190101000000", "9", False), (">2000", "300", True),
    ("2019*", "2019", False), (">=20190101000000", "20190101", False), (">1", "", False), ("1,2", "1", False),
])
def test_build_id_table(expr, value, match):
    assert compile_string_expression(expr)(value) is match


@pytest.mark.parametrize("expr,value,match", [
    ("<=8000", 8000, True), ("<=8000", 8001, False), ("9000", 9000, True), (">10000", 11000, True),
    (">10000", None, True),
])
def test_memory_table(expr, value, match):
    assert compile_int_expression(expr)(value) is match


@pytest.mark.parametrize("expr,value,match", [
    ("Windows_NT 5.1", "Windows_NT 5.1.2600", True), ("Windows_NT 5.1,Windows_NT 5.2", "Windows_NT 6.1", False),
    ("Windows_NT 5.1, Windows_NT 5.2", "Windows_NT 5.2", True), ("Windows && (websense-", "Windows_NT 10.0 (websense-x)", True),
    ("Windows && (websense-", "Windows_NT 10.0", False), ("GTK 2,GTK 3 && x86_64", "GTK 3.22 (x86_64)", True),
    ("Darwin 6,Darwin 7,", "Linux", True), ("windows_nt", "Windows_NT 6.1", False), ("x", "", False),
])
def test_os_version_table(expr, value, match):
    assert compile_os_version(expr)(value) is match


@pytest.mark.parametrize("expr,value,match", [
    ("SSE", "SSE2", False), ("MMX,SSE", "SSE", True), ("MMX, SSE", "SSE", False), ("en-US,de", "en", False),
    ("mozilla1,mozilla2,mozilla3", "mozilla2", True), ("mozilla1,mozilla2,mozilla3", "zilla", False),
    ("SSE", "", False), ("default", None, False),
])
def test_exact_list_table(expr, value, match):
    assert compile_exact_list(expr)(value) is match


@pytest.mark.parametrize("column", ["mig64", "jaws"])
@pytest.mark.parametrize("rule_value,query_value,match", [
    (None, True, True), (None, False, True), (None, None, True),
    (True, True, True), (True, False, False), (True, None, False),
    (False, True, False), (False, False, True), (False, None, False),
])
def test_tri_state_table(column, rule_value, query_value, match):
    assert (winner([rule(**{column: rule_value})], **{column: query_value}) == 1) is match


def test_priority_then_lowest_rule_id():
    assert winner([rule(1, 80), rule(2, 90)]) == 2
    assert winner([rule(5, 100), rule(3, 100)]) == 3


def test_candidate_columns_are_exact_and_absent_keys_need_null():
    rules = [rule(1, 100, distVersion="dv1"), rule(2, 50)]
    assert winner(rules, distVersion=None) == 2
    assert winner(rules, distVersion="dv1") == 1
    assert winner(rules, distVersion="DV1") == 2
    arch = [rule(1, 100, headerArchitecture="PPC"), rule(2, 50)]
    assert winner(arch, headerArchitecture="PPC") == 1
    assert winner(arch, headerArchitecture=None) == 2
    assert winner([rule(buildTarget="WINNT")], buildTarget="Linux") is None


def test_distribution_absent_from_v2_query():
    rules = [rule(1, 100, distribution="default"), rule(2, 50)]
    assert winner(rules, distribution="") == 2


def test_null_product_rules_apply_to_every_product():
    assert winner([rule(product=None)], product="anything") == 1
    assert winner([rule(product="Firefox")], product="Thunderbird") is None


def test_invalid_query_version_fails_even_if_rule_would_lose():
    rules = [rule(1, 100), rule(2, 50, version="<60.0")]
    with pytest.raises(RuleError, match="Version number 60.0esr is invalid."):
        winner(rules, version="60.0esr")
    # Rules that fail a candidate column (SQL side) are never asked.
    assert winner([rule(1, 100), rule(2, 50, version="<60.0", buildTarget="other")], version="60.0esr") == 1


def test_invalid_rule_operand_is_a_400_when_evaluated():
    with pytest.raises(RuleError, match=r"Version number 4\.\* is invalid\."):
        winner([rule(1, 100), rule(2, 50, version="4.*")], version="5.0")
    # ...but not when its channel already excludes it.
    assert winner([rule(1, 100), rule(2, 50, version="4.*", channel="beta")], version="5.0") == 1


def test_malformed_operators_never_match():
    assert winner([rule(1, 100, version="=60.0"), rule(2, 50)], version="60.0") == 2
    assert winner([rule(1, 100, version=">= 60.0"), rule(2, 50)], version="60.0") == 2


def test_loose_versions_for_guardian():
    rules = [rule(1, 100, product="Guardian", version="<1.10.0"), rule(2, 50, product="Guardian")]
    assert winner(rules, product="Guardian", version="1.9.0") == 1
    assert winner(rules, product="Guardian", version="1.10.0") == 2


def test_candidate_memo_is_bounded():
    index = RuleIndex([rule(channel="release*")])
    index.MEMO_LIMIT = 10
    for i in range(25):
        index.select(query(channel=f"release{i}"))
    assert len(index._memo) <= 10
