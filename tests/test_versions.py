"""The version tables of rule-matching.md §11, verbatim, plus order properties."""
import re

import pytest
from hypothesis import given, strategies as st

from balrog_engine.versions import (
    GlobVersion, InvalidPin, InvalidVersion, compare_to_pin, parse_loose, parse_mozilla, parse_mozilla_or_glob,
    parse_pin,
)
from balrog_engine.matching import compile_version_expression, parse_query_version


@pytest.mark.parametrize("text,numbers,tag,canonical", [
    ("1.0", (1, 0, 0), "", "1.0"),
    ("1.0.0", (1, 0, 0), "", "1.0"),
    ("3.6.3plugin1", (3, 6, 3), "p1", "3.6.3p1"),
    ("3.6.3Plugin1", (3, 6, 3), "P1", "3.6.3P1"),
    ("4.0b1", (4, 0, 0), "b1", "4.0b1"),
    ("0.5", (0, 5, 0), "", "0.5"),
    ("04.0", (4, 0, 0), "", "4.0"),
    ("5.0a1", (5, 0, 0), "a1", "5.0a1"),
    ("60.00", (60, 0, 0), "", "60.0"),
    ("60.0.0a1", (60, 0, 0), "a1", "60.0a1"),
    ("1.5.0.12", (1, 5, 12), "", "1.5.12"),
    ("1.5.0.1rc1", (1, 5, 1), "r1", "1.5.1r1"),
    ("60.0.0.0", (60, 0, 0), "", "60.0"),
])
def test_parsing_table(text, numbers, tag, canonical):
    v = parse_mozilla(text)
    assert v.numbers == numbers
    assert (f"{v.tag}{v.tag_number}" if v.tag else "") == tag
    assert v.canonical == canonical


@pytest.mark.parametrize("text", [
    "5.0b1", "60.0b3", "60.0esr", "60.0.1esr", "99.9a", "1.0a", "1", "60", "abc", "1.2.3.4.5", "1.5.0.12.1",
    "4.*", "10.0.3esrpre", "161", "3.10a", "3.4j", "2g6", "11g", "1.13++", "5.5.kw", "1.0esrpre",
])
def test_invalid_versions(text):
    with pytest.raises(InvalidVersion, match=re.escape(f"Version number {text} is invalid.")):
        parse_mozilla_or_glob(text)


def test_globs_parse():
    assert isinstance(parse_mozilla_or_glob("78.*"), GlobVersion)
    assert isinstance(parse_mozilla_or_glob("78.8.*"), GlobVersion)
    with pytest.raises(InvalidVersion):
        parse_mozilla_or_glob("80.*.*")


@pytest.mark.parametrize("a,b,expected", [
    ("1.5.1", "1.5.2b2", "<"), ("8.02", "8.02", "=="), ("0.9", "2.2", "<"), ("1.2.1", "1.2", ">"),
    ("1.1", "1.2.2", "<"), ("1.2.2", "1.2", ">"), ("0.4.0", "0.4", "=="), ("3.6", "3.6.0", "=="),
    ("60.0", "60.0.0", "=="), ("60.0.1", "60.0", ">"), ("60.0a1", "60.0", "<"), ("60.0a1", "60.0a2", "<"),
    ("60.0a2", "59.0.3", ">"), ("9.0", "10.0", "<"), ("100.0", "99.0.1", ">"), ("4.0a1", "4.0b1", "<"),
    ("4.0b1", "4.0", "<"), ("4.0b10", "4.0b9", ">"), ("3.6.3plugin1", "3.6.3", "<"),
    ("3.6.3plugin1", "3.6.3b1", ">"), ("3.6.3plugin1", "3.6.4", "<"), ("1.5.0.12", "1.5.12", "=="),
    ("1.5.0.12", "1.5.1", ">"), ("2.0.0.20", "2.0.1", ">"), ("4.9", "5.0a1", "<"),
])
def test_ordering_table(a, b, expected):
    va, vb = parse_mozilla(a), parse_mozilla(b)
    got = "<" if va < vb else ">" if va > vb else "=="
    assert got == expected
    assert (va == vb) == (expected == "==")


@pytest.mark.parametrize("query,rule,match", [
    ("1.0.0", "1.0", True), ("60.0", ">=60.0", True), ("60.0.1", ">60.0", True), ("60.0a1", "<60.0", True),
    ("60.0a1", "60.0", False), ("60.0a2", ">60.0a1", True), ("4.0", ">=4.0b1", True), ("4.0b2", ">4.0b1", True),
    ("3.0.1", "3.0.1,3.0.2,3.0b3", True), ("3.0.2", "3.0.1,3.0.2,3.0b3", True), ("3.0b3", "3.0.1,3.0.2,3.0b3", True),
    ("3.0.3", "3.0.1,3.0.2,3.0b3", False), ("2.0", "2.0.1,2.0.2,2.0.3", False), ("61.0", "<60.0,>=61.0", True),
    ("60.0.0.1", "60.0", False), ("1.5.0.12", "<1.5.1", False),
    # globs (§11.1.3)
    ("80.0.0", "80.0.*", True), ("80.0.1", "80.0.*", True), ("800.0.1", "80.0.*", False),
    ("80.1.90", "80.1.*", True), ("80.10.0", "80.1.*", False), ("80.1.0", "80.*", True),
    ("80.9.89", "80.*", True), ("80.0a1", "80.*", True), ("89.89.0", "80.*", False), ("78.8", "78.8.*", True),
    ("78.8.0a1", "78.8.*", False), ("78.8.1a1", "78.8.*", True), ("5.0a1", "5.0.*", False),
    ("7.8.1", "7.8.*", True), ("10.0", "9.*", False), ("100.0", "10.*", False),
])
def test_rule_expression_table(query, rule, match):
    assert compile_version_expression(rule)(parse_query_version(query, loose=False)) is match


@pytest.mark.parametrize("query,rule", [("60.0b1", "<60.0"), ("78", "78.*")])
def test_rule_expression_errors(query, rule):
    with pytest.raises(InvalidVersion, match=f"Version number {query} is invalid."):
        compile_version_expression(rule)(parse_query_version(query, loose=False))


def test_rule_operand_invalid_names_the_operand():
    with pytest.raises(InvalidVersion, match=r"Version number 4\.\* is invalid\."):
        compile_version_expression("4.*")(parse_query_version("4.0", loose=False))


@pytest.mark.parametrize("a,b,expected", [
    ("0.99.99.99", "1.0.0.0", "<"), ("1.10.0", "1.9.0", ">"), ("1.0", "1.0.0", "<"), ("2.0.0.0", "10.0", "<"),
    ("1.0a", "1.0b", "<"),
])
def test_loose_ordering(a, b, expected):
    la, lb = parse_loose(a), parse_loose(b)
    assert ("<" if la < lb else ">" if la > lb else "==") == expected


def test_loose_incomparable_is_type_error():
    with pytest.raises(TypeError):
        parse_loose("1.0a") < parse_loose("1.0.1")


@pytest.mark.parametrize("pin,version,relation", [
    ("102.", "102.0.0", 0), ("102.", "102.99.99", 0), ("102.", "102.0.0a1", 0), ("102.", "103.0", 1),
    ("102.", "103.0.0a1", 1), ("102.", "101.9", -1), ("102.", "1.5.0.1", -1), ("102.1.", "102.1.5", 0),
    ("102.1.", "102.1.0a1", 0), ("102.1.", "102.2.0", 1), ("102.1.", "102.0a1", -1),
])
def test_pin_table(pin, version, relation):
    assert compare_to_pin(parse_mozilla(version), parse_pin(pin)) == relation


@pytest.mark.parametrize("pin", ["102", "102.1.2.", ".", "a.", "102..", "1.2.3", ""])
def test_invalid_pins(pin):
    with pytest.raises(InvalidPin, match="Version Pin String"):
        parse_pin(pin)


# --- properties ---------------------------------------------------------------------------
_num = st.integers(min_value=0, max_value=120)
_tag = st.one_of(st.just(""), st.tuples(st.sampled_from("a"), st.integers(1, 20)).map(lambda t: f"{t[0]}{t[1]}"))


@st.composite
def versions(draw):
    major = draw(st.integers(5, 120))
    parts = [major, draw(_num)] + ([draw(_num)] if draw(st.booleans()) else [])
    return parse_mozilla(".".join(map(str, parts)) + draw(_tag))


@given(versions(), versions())
def test_order_is_antisymmetric(a, b):
    assert not (a < b and b < a)
    assert (a <= b and b <= a) == (a == b)


@given(versions(), versions(), versions())
def test_order_is_transitive(a, b, c):
    if a <= b and b <= c:
        assert a <= c


@given(versions(), versions())
def test_order_is_total(a, b):
    assert (a < b) + (a == b) + (a > b) == 1
