"""balrog_engine.jsondiff: structural diff/patch, three-way merge, compact history."""
from __future__ import annotations

import copy
import json
import statistics
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from balrog_engine.jsondiff import (
    MISSING, HistoryCodec, HistoryError, PatchError, diff, encode_history, format_path, merge3, patch, same,
)

DATASET = Path("/work/shared/bench/dataset.json")


def dumps(value) -> str:
    """The serialisation whose bytes must be preserved (key order, 1 vs 1.0, True vs 1)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def roundtrip(old, new):
    """patch(old, diff(old, new)) reproduces new exactly, also through JSON; returns the ops."""
    before = dumps(old)
    ops = diff(old, new)
    assert dumps(patch(old, ops)) == dumps(new)
    assert dumps(patch(old, json.loads(json.dumps(ops)))) == dumps(new)
    assert dumps(old) == before, "patch/diff mutated the input"
    return ops


# ============================================================================ strategies

scalars = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
keys = st.text(max_size=4)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)
json_dicts = st.dictionaries(keys, json_values, min_size=1, max_size=6)


def all_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from all_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from all_paths(v, path + (i,))


def get(value, path):
    for key in path:
        value = value[key]
    return value


def mutate(data, value, max_edits=4):
    """A copy of ``value`` with a few random edits anywhere: replace, add/remove/reorder
    dict keys, insert/remove list items (so diffs recurse, shift lists, reorder)."""
    value = copy.deepcopy(value)
    for _ in range(data.draw(st.integers(0, max_edits))):
        paths = list(all_paths(value))
        path = data.draw(st.sampled_from(paths))
        node = get(value, path)
        choices = ["replace"]
        if isinstance(node, dict):
            choices += ["add", "remove", "reorder"] if node else ["add"]
        elif isinstance(node, list):
            choices += ["insert", "remove"] if node else ["insert"]
        action = data.draw(st.sampled_from(choices))
        if action == "replace":
            new = data.draw(json_values)
            if not path:
                value = new
            else:
                get(value, path[:-1])[path[-1]] = new
        elif action == "add":
            node[data.draw(keys)] = data.draw(json_values)
        elif action == "reorder":
            order = data.draw(st.permutations(list(node)))
            items = [(k, node[k]) for k in order]
            node.clear()
            node.update(items)
        elif action == "insert":
            node.insert(data.draw(st.integers(0, len(node))), data.draw(json_values))
        elif isinstance(node, dict):
            del node[data.draw(st.sampled_from(list(node)))]
        else:
            del node[data.draw(st.integers(0, len(node) - 1))]
    return value


# ============================================================================ same / format_path

@given(json_values, json_values)
def test_same_is_serialisation_equality(a, b):
    assert same(a, b) == (dumps(a) == dumps(b))
    assert same(a, copy.deepcopy(a))


@pytest.mark.parametrize("a,b", [
    (1, 1.0), (1, True), (0, False), (0.0, -0.0), (None, False), ("1", 1), ({}, []),
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}), ([1, 2], [2, 1]), ({"a": None}, {}),
])
def test_same_is_strict(a, b):
    assert not same(a, b) and not same(b, a)  # whatever == says, json.dumps shows the difference


@pytest.mark.parametrize("path,text", [
    ((), "$"),
    (("platforms", "WINNT_x86-msvc", "locales", "de", "buildID"), "platforms.WINNT_x86-msvc.locales.de.buildID"),
    (("partials", 0, "filesize"), "partials[0].filesize"),
    (("fileUrls", "*", "partials", "Firefox-66.0.2-build1"), 'fileUrls.*.partials["Firefox-66.0.2-build1"]'),
    (("", "a b", 'q"', "$x", "ok"), '[""]["a b"]["q\\""]["$x"].ok'),
    ((3, "é"), "[3].é"),
])
def test_format_path(path, text):
    assert format_path(path) == text


# ============================================================================ diff / patch units

def test_identical_values_give_no_ops():
    doc = {"a": [1, {"b": None}], "c": "x"}
    assert diff(doc, copy.deepcopy(doc)) == []
    assert patch(doc, []) == doc and patch(doc, []) is not doc


def test_change_deep_inside_gives_one_small_op():
    old = {"platforms": {"p": {"locales": {"de": {"buildID": "1", "x": [1, 2]}, "fr": {"buildID": "1"}}}}}
    new = copy.deepcopy(old)
    new["platforms"]["p"]["locales"]["de"]["buildID"] = "2"
    assert roundtrip(old, new) == [["set", ["platforms", "p", "locales", "de", "buildID"], "2"]]


@pytest.mark.parametrize("old,new", [
    ({"a": {"b": 1}}, {"a": [1]}),          # dict -> list
    ({"a": [1]}, {"a": {"0": 1}}),          # list -> dict
    ({"a": 1}, {"a": {"b": 1}}),            # value -> dict
    ({"a": {"b": 1}}, {"a": "b"}),          # dict -> value
    ({"a": {}}, {"a": []}),                 # empty dict -> empty list
    ({"a": 1}, [1]),                        # root type change
    ("x", None),
    ([], {}),
])
def test_type_changes_replace_the_value(old, new):
    ops = roundtrip(old, new)
    assert len(ops) == 1 and ops[0][0] == "set"


def test_removal_of_keys():
    ops = roundtrip({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}, {"b": {"d": 3}, "e": 4})
    assert ops == [["remove", ["a"]], ["remove", ["b", "c"]]]


def test_nested_additions():
    ops = roundtrip({"a": {}}, {"a": {"b": {"c": {"d": [1]}}}, "z": {}})
    assert ops == [["set", ["a", "b"], {"c": {"d": [1]}}], ["set", ["z"], {}]]


@pytest.mark.parametrize("old,new", [
    ({}, {"a": {}}), ({"a": {}}, {}), ([], [[]]), ([[]], []), ({"a": []}, {"a": [{}]}),
    ({}, {}), ([], []), ({"": ""}, {"": None}),
])
def test_empty_containers(old, new):
    roundtrip(old, new)


def test_unicode_keys_and_values():
    old = {"zh-TW": "中文", "emoji": "😀", "ключ": {"ü": "x"}}
    new = {"zh-TW": "繁體中文", "emoji": "😀😀", "ключ": {"ü": "y", "\u2028": "\x00"}}
    roundtrip(old, new)


def test_floats_and_ints_stay_distinguishable():
    ops = roundtrip({"size": 1}, {"size": 1.0})
    assert ops == [["set", ["size"], 1.0]]
    assert dumps(patch({"size": 1}, ops)) == '{"size":1.0}'
    assert dumps(patch({"size": 1.0}, diff({"size": 1.0}, {"size": 1}))) == '{"size":1}'
    assert dumps(patch({"z": 0.0}, diff({"z": 0.0}, {"z": -0.0}))) == '{"z":-0.0}'
    big = {"n": 10**30}
    roundtrip(big, {"n": 10**30 + 1})
    roundtrip({"f": 0.1 + 0.2}, {"f": 0.3})


def test_booleans_are_not_ints():
    assert diff([True, 0, 1], [1, False, True]) == [["set", [0], 1], ["set", [1], False], ["set", [2], True]]
    assert dumps(patch({"x": True}, diff({"x": True}, {"x": 1}))) == '{"x":1}'


def test_none_values_versus_missing_keys():
    assert roundtrip({"a": None}, {}) == [["remove", ["a"]]]
    assert roundtrip({}, {"a": None}) == [["set", ["a"], None]]
    assert roundtrip({"a": 0}, {"a": None}) == [["set", ["a"], None]]
    assert diff({"a": None}, {"a": None}) == []


def test_key_order_reorder_only():
    old = {"a": 1, "b": 2, "c": 3}
    ops = roundtrip(old, {"c": 3, "a": 1, "b": 2})
    assert ops == [["order", [], ["c", "a", "b"]]]


def test_key_order_appended_keys_need_no_order_op():
    ops = roundtrip({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3, "d": 4})
    assert [op[0] for op in ops] == ["set", "set"]


def test_key_order_insert_in_the_middle_of_sorted_locales():
    old = {"locales": {"af": 1, "en-US": 2, "zh-TW": 3}, "z": 0}
    new = {"locales": {"af": 1, "de": 9, "en-US": 2, "zh-TW": 3}, "z": 0}
    ops = roundtrip(old, new)
    assert ops == [["set", ["locales", "de"], 9], ["order", ["locales"], ["af", "de", "en-US", "zh-TW"]]]
    assert list(patch(old, ops)["locales"]) == ["af", "de", "en-US", "zh-TW"]


def test_key_order_with_removal_and_move():
    roundtrip({"a": 1, "b": 2, "c": 3, "d": 4}, {"d": 4, "x": 0, "b": 2})
    roundtrip({"a": {"x": 1, "y": 2}}, {"a": {"y": 2, "x": 5}})


@pytest.mark.parametrize("old,new,kinds", [
    ([1, 2, 3], [1, 2, 3, 4, 5], ["insert", "insert"]),           # append
    ([1, 2, 3, 4], [1, 2], ["remove", "remove"]),                 # truncate
    ([1, 2, 3], [1, 9, 2, 3], ["insert"]),                        # insert in the middle
    ([1, 2, 3], [1, 3], ["remove"]),                              # remove in the middle
    ([0, 2, 3], [1, 2, 3], ["set"]),                              # same length: per index
    ([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}], ["set"]),        # ... recursively
    ([1, 2, 3], [4, 5], ["remove", "remove", "remove", "insert", "insert"]),
])
def test_list_strategies(old, new, kinds):
    assert [op[0] for op in roundtrip(old, new)] == kinds


def test_list_item_change_recurses():
    old = {"partials": [{"from": "a", "filesize": 1}, {"from": "b", "filesize": 2}]}
    new = copy.deepcopy(old)
    new["partials"][1]["filesize"] = 3
    assert roundtrip(old, new) == [["set", ["partials", 1, "filesize"], 3]]


def test_patch_does_not_mutate_or_share():
    old = {"a": {"b": [1, 2]}, "c": 1}
    new = {"a": {"b": [1, 2, {"d": []}]}, "c": 2}
    ops = diff(old, new)
    result = patch(old, ops)
    result["a"]["b"][2]["d"].append("mutated")
    result["a"]["b"].append("mutated")
    assert old == {"a": {"b": [1, 2]}, "c": 1}
    assert new == {"a": {"b": [1, 2, {"d": []}]}, "c": 2}
    assert patch(old, ops) == new  # the ops were not changed through the result either


def test_patch_root_set():
    assert patch({"a": 1}, [["set", [], [1, 2]]]) == [1, 2]


@pytest.mark.parametrize("value,ops", [
    ({"a": 1}, [["remove", ["b"]]]),
    ({"a": 1}, [["set", ["b", "c"], 1]]),
    ({"a": [1]}, [["set", ["a", 5], 1]]),
    ({"a": [1]}, [["set", ["a", "0"], 1]]),
    ({"a": [1]}, [["set", ["a", True], 1]]),
    ({"a": [1]}, [["remove", ["a", 1]]]),
    ({"a": [1]}, [["insert", ["a", 2], 1]]),
    ({"a": {}}, [["insert", ["a", "x"], 1]]),
    ({"a": 1}, [["set", ["a", "b"], 1]]),
    ({"a": 1, "b": 2}, [["order", [], ["a"]]]),
    ({"a": 1, "b": 2}, [["order", [], ["a", "a"]]]),
    ({"a": 1, "b": 2}, [["order", [], [["unhashable"], "a"]]]),
    ({"a": []}, [["order", ["a"], []]]),
    ({"a": 1}, [["remove", []]]),
    ({"a": 1}, [["frobnicate", ["a"], 1]]),
    ({"a": 1}, [["set", ["a"]]]),
    ({"a": 1}, [["set", "a", 1]]),
    ({"a": 1}, ["set"]),
])
def test_patch_errors(value, ops):
    with pytest.raises(PatchError):
        patch(value, ops)


# ============================================================================ diff / patch properties

@given(json_values, json_values)
def test_roundtrip_unrelated_values(old, new):
    roundtrip(old, new)


@settings(max_examples=300)
@given(st.data(), json_values)
def test_roundtrip_related_values(data, old):
    new = mutate(data, old)
    ops = roundtrip(old, new)
    if same(old, new):
        assert ops == []


# ============================================================================ merge3 units

def test_merge_non_overlapping_changes_combine():
    base = {"a": 1, "b": {"x": 1, "y": 1}, "c": [1, 2]}
    ours = {"a": 2, "b": {"x": 1, "y": 1}, "c": [1, 2]}
    theirs = {"a": 1, "b": {"x": 1, "y": 5}, "c": [1, 3]}
    merged, conflicts = merge3(base, ours, theirs)
    assert conflicts == []
    assert merged == {"a": 2, "b": {"x": 1, "y": 5}, "c": [1, 3]}


def test_merge_same_change_is_not_a_conflict():
    base = {"a": 1, "b": 1}
    assert merge3(base, {"a": 2, "b": 1}, {"a": 2, "b": 3}) == ({"a": 2, "b": 3}, [])
    assert merge3(base, {"b": 1}, {"b": 1}) == ({"b": 1}, [])                  # both removed
    assert merge3({}, {"n": [1]}, {"n": [1]}) == ({"n": [1]}, [])              # both added, same
    # both added an object (two jobs' first locales of a new platform): merged as two additions
    assert merge3({}, {"p": {"de": 1}}, {"p": {"fr": 2}}) == ({"p": {"de": 1, "fr": 2}}, [])


def test_merge_different_changes_conflict():
    base = {"platforms": {"p": {"locales": {"de": {"buildID": "1"}}}}}
    ours = copy.deepcopy(base)
    ours["platforms"]["p"]["locales"]["de"]["buildID"] = "2"
    theirs = copy.deepcopy(base)
    theirs["platforms"]["p"]["locales"]["de"]["buildID"] = "3"
    assert merge3(base, ours, theirs) == (None, ["platforms.p.locales.de.buildID"])


@pytest.mark.parametrize("base,ours,theirs,paths", [
    ({"a": {"b": 1}}, {}, {"a": {"b": 2}}, ["a"]),              # removed vs changed under it
    ({"a": {"b": 1}}, {"a": {"b": 1, "c": 1}}, {}, ["a"]),       # changed under vs removed
    ({"a": 1}, {"a": None}, {}, ["a"]),                          # null is not missing
    ({}, {"a": 1}, {"a": 2}, ["a"]),                             # same key added differently
    ({}, {"a": {"x": 1}}, {"a": {"x": 2}}, ["a.x"]),             # ... also inside objects added on both sides
    ({"a": 1}, {"a": 1.0}, {"a": True}, ["a"]),                  # 1 / 1.0 / True all differ
    ({"a": 0}, {"a": 0.0}, {"a": -0.0}, ["a"]),
    ({"a": {"b": 1}}, {"a": [1]}, {"a": {"b": 2}}, ["a"]),       # type change vs change
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, {"a": [0, 2]}, ["a"]),     # list length changed on one side
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, {"a": [1, 2, 4]}, ["a"]),  # both appended differently
    ({"l": [{"x": 1, "y": 1}]}, {"l": [{"x": 2, "y": 1}]}, {"l": [{"x": 1, "y": 2}]}, ["l[0]"]),  # items atomic
    ({"a": 1, "b": 1}, {"a": 2, "b": 2}, {"a": 3, "b": 3}, ["a", "b"]),
    (1, 2, 3, ["$"]),
])
def test_merge_conflicts(base, ours, theirs, paths):
    assert merge3(base, ours, theirs) == (None, paths)


def test_merge_list_items_by_index_when_lengths_agree():
    base = {"partials": [{"from": "a", "size": 1}, {"from": "b", "size": 2}]}
    ours = copy.deepcopy(base)
    ours["partials"][0]["size"] = 10
    theirs = copy.deepcopy(base)
    theirs["partials"][1]["size"] = 20
    merged, conflicts = merge3(base, ours, theirs)
    assert conflicts == [] and merged["partials"] == [{"from": "a", "size": 10}, {"from": "b", "size": 20}]
    # a reorder on one side and a change on the other touch the same index: conflict
    swapped = {"partials": base["partials"][::-1]}
    assert merge3(base, swapped, theirs) == (None, ["partials[1]"])


def test_merge_result_shares_nothing_with_inputs():
    base = {"a": {"x": [1]}, "b": 1}
    ours = {"a": {"x": [1]}, "b": 2}
    theirs = {"a": {"x": [1, 2]}, "b": 1}
    merged, _ = merge3(base, ours, theirs)
    merged["a"]["x"].append(3)
    assert theirs == {"a": {"x": [1, 2]}, "b": 1}


def test_merge_key_order_follows_theirs():
    base = {"a": 1, "b": 1, "c": 1}
    ours = {"a": 2, "b": 1, "c": 1}
    theirs = {"c": 1, "a": 1, "b": 5}
    merged, _ = merge3(base, ours, theirs)
    assert dumps(merged) == '{"c":1,"a":2,"b":5}'


def test_merge_key_order_follows_ours_when_only_ours_reordered():
    base = {"a": 1, "b": 1, "c": 1}
    ours = {"c": 1, "b": 1, "a": 1}
    theirs = {"a": 1, "b": 2, "c": 1, "d": 0}
    merged, _ = merge3(base, ours, theirs)
    # theirs' addition goes right after the key preceding it in theirs ("c")
    assert dumps(merged) == '{"c":1,"d":0,"b":2,"a":1}'


def test_merge_concurrent_additions_to_sorted_dict_stay_sorted():
    base = {"locales": {"af": 1, "cs": 1, "el": 1, "zh-TW": 1}}
    current = base
    for locale in ["de", "da", "dz", "ach", "zu", "en-US", "cy"]:
        ours = copy.deepcopy(base)
        ours["locales"][locale] = 2
        ours["locales"] = dict(sorted(ours["locales"].items()))
        current, conflicts = merge3(base, ours, current)
        assert conflicts == []
    assert list(current["locales"]) == sorted(current["locales"])
    assert len(current["locales"]) == 11


def test_merge_key_appended_next_to_other_sides_removal():
    base = {"a": 1, "b": 1, "c": 1}
    merged, _ = merge3(base, {"a": 1, "b": 1, "c": 1, "d": 1}, {"a": 1, "b": 1})
    assert list(merged) == ["a", "b", "d"]
    merged, _ = merge3(base, {"x": 0, "a": 1, "b": 1, "c": 1}, {"a": 1, "c": 2})
    assert list(merged) == ["x", "a", "c"]


def test_conflict_hook_is_called_top_down_with_missing():
    calls = []

    def hook(path, base, ours, theirs):
        calls.append((path, base, ours, theirs))
        return None

    base = {"a": {"b": 1}, "k": 1}
    merged, conflicts = merge3(base, {"a": {"b": 1, "c": 1}}, {"a": {"b": 2}, "k": 1}, conflict=hook)
    assert conflicts == []
    assert merged == {"a": {"b": 2, "c": 1}}
    assert [format_path(c[0]) for c in calls] == ["$", "a"]  # "k": removed by ours only

    calls.clear()
    merged, _ = merge3({"x": 1, "y": 1, "z": {}}, {"y": 2, "z": {}}, {"z": {"q": 1}}, conflict=hook)
    assert merged is None
    assert calls == [((), {"x": 1, "y": 1, "z": {}}, {"y": 2, "z": {}}, {"z": {"q": 1}}),
                     (("y",), 1, 2, MISSING)]  # "x": removed on both sides, "z": by theirs only
    assert repr(MISSING) == "MISSING"


def test_conflict_hook_can_force_a_conflict():
    def locale_entries_are_atomic(path, base, ours, theirs):
        return True if len(path) == 4 and path[2] == "locales" else None

    base = {"platforms": {"p": {"locales": {"de": {"buildID": "1", "hash": "x"}}}}}
    ours = copy.deepcopy(base)
    ours["platforms"]["p"]["locales"]["de"]["buildID"] = "2"
    theirs = copy.deepcopy(base)
    theirs["platforms"]["p"]["locales"]["de"]["hash"] = "y"
    assert merge3(base, ours, theirs)[1] == []
    assert merge3(base, ours, theirs, conflict=locale_entries_are_atomic) == (None, ["platforms.p.locales.de"])
    # the same change on both sides is still no conflict (the hook is not asked)
    assert merge3(base, ours, ours, conflict=locale_entries_are_atomic) == (ours, [])


def test_conflict_hook_can_waive_a_conflict_ours_wins():
    def comments_never_conflict(path, base, ours, theirs):
        return False if path and path[-1] == "comment" else None

    base = {"comment": "a", "x": 1}
    merged, conflicts = merge3(base, {"comment": "b", "x": 1}, {"comment": "c", "x": 2},
                               conflict=comments_never_conflict)
    assert (merged, conflicts) == ({"comment": "b", "x": 2}, [])
    merged, conflicts = merge3(base, {"x": 1}, {"comment": "c", "x": 1}, conflict=comments_never_conflict)
    assert (merged, conflicts) == ({"x": 1}, [])


# ============================================================================ merge3 properties

@given(json_values, json_values)
def test_merge_only_ours_changed(base, x):
    merged, conflicts = merge3(base, x, base)
    assert conflicts == [] and dumps(merged) == dumps(x)


@given(json_values, json_values)
def test_merge_only_theirs_changed(base, y):
    merged, conflicts = merge3(base, base, y)
    assert conflicts == [] and dumps(merged) == dumps(y)


@given(json_values, json_values)
def test_merge_same_change(base, x):
    merged, conflicts = merge3(base, x, copy.deepcopy(x))
    assert conflicts == [] and dumps(merged) == dumps(x)


@settings(max_examples=300)
@given(st.data(), json_values)
def test_merge_is_symmetric_up_to_key_order(data, base):
    ours, theirs = mutate(data, base), mutate(data, base)
    m1, c1 = merge3(base, ours, theirs)
    m2, c2 = merge3(base, theirs, ours)
    assert sorted(c1) == sorted(c2)
    if c1:
        assert m1 is None and m2 is None
    else:  # (a merged document can be JSON null itself: test the conflicts, not `merged is None`)
        assert json.dumps(m1, sort_keys=True) == json.dumps(m2, sort_keys=True)


@settings(max_examples=300)
@given(st.data(), json_values)
def test_merge_with_a_neutral_hook_is_the_same(data, base):
    # merge3 takes a shortcut for dicts when there is no hook; a hook that always answers
    # None must give exactly the same result, key order included.
    ours, theirs = mutate(data, base), mutate(data, base)
    merged, conflicts = merge3(base, ours, theirs)
    merged_hooked, conflicts_hooked = merge3(base, ours, theirs, conflict=lambda *args: None)
    assert conflicts == conflicts_hooked
    assert dumps(merged) == dumps(merged_hooked)


def draw_edit(data, base):
    """One edit of ``base`` as (touched path, function applying it in place, added key?)."""
    paths = [p for p in all_paths(base) if p]
    dict_paths = [p for p in all_paths(base) if isinstance(get(base, p), dict)]
    kinds = ["add"] + (["replace"] if paths else []) + (
        ["remove"] if any(isinstance(get(base, p[:-1]), dict) for p in paths) else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "add":
        where = data.draw(st.sampled_from(dict_paths))
        key = data.draw(keys.filter(lambda k: k not in get(base, where)))
        value = data.draw(json_values)
        return where + (key,), lambda doc: get(doc, where).__setitem__(key, copy.deepcopy(value)), True
    if kind == "replace":
        path = data.draw(st.sampled_from(paths))
        value = data.draw(json_values)
        return path, lambda doc: get(doc, path[:-1]).__setitem__(path[-1], copy.deepcopy(value)), False
    path = data.draw(st.sampled_from([p for p in paths if isinstance(get(base, p[:-1]), dict)]))
    return path, lambda doc: get(doc, path[:-1]).__delitem__(path[-1]), False


def disjoint(p, q):
    """Neither path contains the other, and they do not go through the same list item
    (list items are atomic for merge3)."""
    common = 0
    while common < min(len(p), len(q)) and p[common] == q[common] and type(p[common]) is type(q[common]):
        common += 1
    if common == min(len(p), len(q)):
        return False
    return not any(isinstance(k, int) for k in p[:common])


@settings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.data(), json_dicts)
def test_merge_disjoint_edits_contains_both(data, base):
    p1, edit1, added1 = draw_edit(data, base)
    p2, edit2, added2 = draw_edit(data, base)
    assume(disjoint(p1, p2))
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    edit1(ours)
    edit2(theirs)
    expected = copy.deepcopy(base)
    # Keys both sides append to one dict end up in sorted order (merge3's order rule).
    if added1 and added2 and p1[:-1] == p2[:-1] and p2[-1] < p1[-1]:
        edit2(expected), edit1(expected)
    else:
        edit1(expected), edit2(expected)
    merged, conflicts = merge3(base, ours, theirs)
    assert conflicts == []
    assert dumps(merged) == dumps(expected)


# ============================================================================ history units

def test_history_records_and_snapshots():
    versions = [{"v": i, "data": {"x": "y" * 100}} for i in range(7)]
    records = encode_history(versions, snapshot_every=3)
    assert [kind for kind, _ in records] == ["full", "diff", "diff", "full", "diff", "diff", "full"]
    assert all(isinstance(kind, str) and isinstance(payload, bytes) for kind, payload in records)
    assert json.loads(zlib.decompress(records[1][1])) == [["set", ["v"], 1]]
    codec = HistoryCodec(snapshot_every=3)
    for i, version in enumerate(versions):
        assert dumps(codec.read(records, i)) == dumps(version)


def test_history_stores_full_when_a_diff_is_not_smaller():
    import random
    rng = random.Random(1)
    versions = [{"k": "".join(rng.choice("0123456789abcdef") for _ in range(2000))} for _ in range(2)]
    versions.append([versions[1]["k"]])  # everything changes: diff = whole document
    records = HistoryCodec(snapshot_every=100).encode(versions)
    assert [kind for kind, _ in records] == ["full", "full", "full"]
    assert dumps(HistoryCodec().read(records, 2)) == dumps(versions[2])


def test_history_reader_finds_full_copies_itself():
    versions = [{"n": i} for i in range(10)]
    mixed = encode_history(versions[:4], snapshot_every=2) + HistoryCodec(5).encode(versions[3:])[1:]
    for i in range(10):
        assert HistoryCodec(snapshot_every=7).read(mixed, i) == {"n": i}


def test_history_exact_types_and_unicode():
    versions = [
        {"a": 1, "b": [True, None], "ü": "中文", "s": "\ud800"},
        {"a": 1.0, "b": [1, None], "ü": "中文😀", "s": "\ud800x", "new": -0.0},
        {"new": 0.0, "a": 1.0, "b": [], "ü": None},
        [],
    ]
    records = encode_history(versions, snapshot_every=50)
    for i, version in enumerate(versions):
        got = HistoryCodec().read(records, i)
        assert json.dumps(got) == json.dumps(version)
        assert dumps(got) == dumps(version)


def test_history_errors():
    records = encode_history([{"a": 1}, {"a": 2}])
    codec = HistoryCodec()
    with pytest.raises(HistoryError):
        codec.read(records, 2)
    with pytest.raises(HistoryError):
        codec.read(records, -1)
    with pytest.raises(HistoryError):
        codec.read(records[1:], 0)          # a diff with no full copy before it
    with pytest.raises(HistoryError):
        codec.read([("weird", b"")] + records[1:], 1)
    broken = [records[0], ("diff", zlib.compress(b'[["remove",["zzz"]]]'))]
    with pytest.raises(HistoryError):
        codec.read(broken, 1)
    with pytest.raises(ValueError):
        HistoryCodec(snapshot_every=0)


@settings(max_examples=100)
@given(st.data(), json_values, st.integers(1, 4))
def test_history_reads_every_version_exactly(data, first, every):
    versions = [first]
    for _ in range(data.draw(st.integers(0, 6))):
        versions.append(mutate(data, versions[-1], max_edits=3))
    records = HistoryCodec(snapshot_every=every).encode(versions)
    for i, version in enumerate(versions):
        assert dumps(HistoryCodec(snapshot_every=every).read(records, i)) == dumps(version)


# ============================================================================ a real release blob

@pytest.fixture(scope="module")
def releases():
    if not DATASET.exists():
        pytest.skip(f"{DATASET} not available")
    return {r["name"]: r["data"] for r in json.loads(DATASET.read_text())["releases"]}


def locale_pairs(blob):
    return [(platform, locale) for platform, entry in blob["platforms"].items()
            for locale in entry.get("locales", {})]


# Firefox's shipped locales: the l10n repacks of a release.
SHIPPED_LOCALES = (
    "ach af an ar ast az be bg bn br bs ca cak cs cy da de dsb el en-CA en-GB en-US eo es-AR es-CL "
    "es-ES es-MX et eu fa ff fi fr fy-NL ga-IE gd gl gn gu-IN he hi-IN hr hsb hu hy-AM ia id is it ja "
    "ka kab kk km kn ko lij lt lv mk mr ms my nb-NO ne-NP nl nn-NO oc pa-IN pl pt-BR pt-PT rm ro ru "
    "si sk sl son sq sr sv-SE ta te th tr uk ur uz vi xh zh-CN zh-TW"
).split()


@pytest.fixture(scope="module")
def l10n_blob(releases):
    """Firefox-67.0-build1 as the production blob looks: every platform with locales
    carries every shipped locale (entries cloned from its ``de`` or ``af``), sorted."""
    blob = copy.deepcopy(releases["Firefox-67.0-build1"])
    for entry in blob["platforms"].values():
        if "locales" in entry:
            template = entry["locales"].get("de") or entry["locales"]["af"]
            locales = {code: copy.deepcopy(entry["locales"].get(code, template)) for code in SHIPPED_LOCALES}
            entry["locales"] = dict(sorted(locales.items()))
    return blob


def set_build_id(base, platform, locale, build_id):
    doc = copy.deepcopy(base)
    doc["platforms"][platform]["locales"][locale]["buildID"] = build_id
    return doc


def test_real_blob_50_writers_on_different_locales_all_merge(l10n_blob):
    base = l10n_blob
    pairs = locale_pairs(base)
    writers = [pairs[(i * 7) % len(pairs)] for i in range(50)]  # spread over platforms and locales
    assert len(set(writers)) == 50 and len({locale for _, locale in writers}) > 30
    print(f"\nblob: {len(json.dumps(base))} bytes, {len(pairs)} locale entries")
    current, elapsed = base, 0.0
    for n, (platform, locale) in enumerate(writers):
        ours = set_build_id(base, platform, locale, f"2019060100{n:04d}")  # each from the same base
        started = time.perf_counter()
        current, conflicts = merge3(base, ours, current)
        elapsed += time.perf_counter() - started
        assert conflicts == [], (platform, locale)
    print(f"50 stale writes merged one after another: {elapsed * 1000 / 50:.1f} ms per merge3")
    expected = copy.deepcopy(base)
    for n, (platform, locale) in enumerate(writers):
        expected["platforms"][platform]["locales"][locale]["buildID"] = f"2019060100{n:04d}"
    assert dumps(current) == dumps(expected)


def test_real_blob_l10n_writers_adding_locales_concurrently(releases):
    base = releases["Firefox-67.0-build1"]
    platform = "WINNT_x86_64-msvc"
    template = base["platforms"][platform]["locales"]["de"]
    current = base
    new_locales = [code for code in SHIPPED_LOCALES if code not in base["platforms"][platform]["locales"]][:50]
    for n, code in enumerate(reversed(new_locales)):
        ours = copy.deepcopy(base)
        locales = ours["platforms"][platform]["locales"]
        locales[code] = dict(template, buildID=f"20190601{n:06d}")
        ours["platforms"][platform]["locales"] = dict(sorted(locales.items()))
        current, conflicts = merge3(base, ours, current)
        assert conflicts == [], code
    locales = current["platforms"][platform]["locales"]
    assert len(locales) == 4 + 50 and list(locales) == sorted(locales)
    assert current["platforms"]["WINNT_x86-msvc"] == base["platforms"]["WINNT_x86-msvc"]


def test_real_blob_same_locale_changed_twice_conflicts(releases):
    base = releases["Firefox-67.0-build1"]
    first = set_build_id(base, "WINNT_x86-msvc", "zh-TW", "20190601000001")
    current, conflicts = merge3(base, first, base)
    assert conflicts == []
    second = set_build_id(base, "WINNT_x86-msvc", "zh-TW", "20190601000002")
    merged, conflicts = merge3(base, second, current)
    assert merged is None
    assert conflicts == ["platforms.WINNT_x86-msvc.locales.zh-TW.buildID"]
    # the same change twice is fine
    assert merge3(base, set_build_id(base, "WINNT_x86-msvc", "zh-TW", "20190601000001"), current)[1] == []


def test_real_blob_history_size_and_read_time(releases):
    name, base = max(releases.items(), key=lambda item: len(json.dumps(item[1])))
    pairs = locale_pairs(base)
    versions, doc = [], base
    for i in range(100):  # 100 successive single-locale changes
        platform, locale = pairs[i % len(pairs)]
        doc = set_build_id(doc, platform, locale, str(20190513195729 + i + 1))
        versions.append(doc)

    codec = HistoryCodec(snapshot_every=50)
    records = codec.encode(versions)
    stored = sum(len(payload) for _, payload in records)
    uncompressed = sum(len(json.dumps(v)) for v in versions)
    ratio = stored / uncompressed
    kinds = [kind for kind, _ in records]
    print(f"\n{name}: {len(json.dumps(base))} bytes; 100 versions stored in {stored} bytes "
          f"({kinds.count('full')} full, {kinds.count('diff')} diffs, "
          f"diff payloads {min(len(p) for k, p in records if k == 'diff')}-"
          f"{max(len(p) for k, p in records if k == 'diff')} bytes) = {ratio:.3%} of {uncompressed} bytes")
    assert kinds.count("full") == 2
    assert ratio <= 0.02

    for index in (0, 37, 49, 99):
        got = codec.read(records, index)
        assert dumps(got) == dumps(versions[index])
        assert json.dumps(got) == json.dumps(versions[index])
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            codec.read(records, index)
            timings.append(time.perf_counter() - started)
        median = statistics.median(timings)
        print(f"read version {index}: median {median * 1000:.2f} ms, min {min(timings) * 1000:.2f} ms")
        assert median < 0.050
