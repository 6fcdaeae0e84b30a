"""Tests for hk_core/_src/core/data_structures.py (API.md §2.7)."""

from collections.abc import Mapping
import copy
import importlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hk_core._src.core import data_structures as ds

PUBLIC_NAMES = [
    "filter", "is_subset", "map", "merge", "partition", "partition_n", "to_haiku_dict",
    "to_immutable_dict", "to_mutable_dict", "traverse", "tree_bytes", "tree_size",
]


def _unsorted_params():
    # Module and name insertion order is deliberately not sorted.
    return {
        "mlp/~/linear_1": {"w": np.ones([3, 2], np.float32), "b": np.zeros([2], np.float32)},
        "mlp/~/linear_0": {"w": np.ones([4, 3], np.float32), "b": np.zeros([3], np.float32)},
    }


def _keys(structure):
    return [(module_name, list(bundle)) for module_name, bundle in structure.items()]


# to_mutable_dict / to_haiku_dict


@pytest.mark.parametrize("convert", [ds.to_mutable_dict, ds.to_haiku_dict])
def test_convert_flatmap_gives_plain_dicts_at_both_levels(convert):
    out = convert(ds.to_immutable_dict({"a": {"w": 1.0}}))
    assert type(out) is dict
    assert type(out["a"]) is dict
    assert out == {"a": {"w": 1.0}}


@pytest.mark.parametrize("convert", [ds.to_mutable_dict, ds.to_haiku_dict])
def test_convert_keeps_insertion_order(convert):
    out = convert({"b": {"y": 1, "x": 2}, "a": {"w": 3}})
    assert _keys(out) == [("b", ["y", "x"]), ("a", ["w"])]


@pytest.mark.parametrize("convert", [ds.to_mutable_dict, ds.to_haiku_dict])
def test_convert_returns_copy_that_shares_leaves(convert):
    leaf = np.ones([2])
    original = {"a": {"w": leaf}}
    out = convert(original)
    out["a"]["b"] = 0.0
    assert original == {"a": {"w": leaf}}
    assert out["a"]["w"] is leaf


# to_immutable_dict / FlatMap


def test_to_immutable_dict_returns_flatmap_with_flatmap_bundles():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    assert type(fm) is ds.FlatMap
    assert type(fm["a"]) is ds.FlatMap


def test_flatmap_is_a_mapping_equal_to_dict_with_same_entries():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}, "b": {}})
    assert isinstance(fm, Mapping)
    assert fm == {"a": {"w": 1.0}, "b": {}}
    assert len(fm) == 2
    assert "a" in fm and "c" not in fm


def test_flatmap_keeps_insertion_order_when_iterated():
    fm = ds.to_immutable_dict({"b": {"y": 1, "x": 2}, "a": {"w": 3}})
    assert _keys(fm) == [("b", ["y", "x"]), ("a", ["w"])]


@pytest.mark.parametrize("is_inner", [False, True], ids=["outer", "inner"])
def test_flatmap_item_assignment_raises_type_error(is_inner):
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    target = fm["a"] if is_inner else fm
    with pytest.raises(TypeError, match="does not support item assignment"):
        target["new"] = 2.0


def test_flatmap_attribute_assignment_raises_attribute_error():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    with pytest.raises(AttributeError, match=r"'FlatMap' object has no attribute 'extra'"):
        fm.extra = 1


@pytest.mark.parametrize("leaf", [np.ones([2]), jnp.ones([2])], ids=["numpy", "jax"])
def test_flatmap_hash_with_array_leaf_raises_type_error(leaf):
    fm = ds.to_immutable_dict({"a": {"w": leaf}})
    with pytest.raises(TypeError, match="unhashable"):
        hash(fm)


def test_flatmap_hash_of_equal_hashable_contents_is_equal():
    first = ds.to_immutable_dict({"a": {"w": 1.0, "b": 2}})
    second = ds.to_immutable_dict({"a": {"b": 2, "w": 1.0}})
    assert hash(first) == hash(second)


def test_flatmap_repr_starts_with_flatmap_and_shows_nesting():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    assert repr(fm) == "FlatMap({'a': FlatMap({'w': 1.0})})"


def test_flatmap_constructor_accepts_dict_arguments():
    fm = ds.FlatMap([("a", {"w": 1})], b={"x": 2})
    assert fm == {"a": {"w": 1}, "b": {"x": 2}}
    assert type(fm["b"]) is ds.FlatMap


def test_flatmap_leaves_follow_sorted_keys():
    fm = ds.to_immutable_dict({"b": {"y": 1, "x": 2}, "a": {"w": 3}})
    assert jax.tree.leaves(fm) == [3, 2, 1]


def test_flatmap_treedef_ignores_insertion_order():
    first = ds.to_immutable_dict({"b": {"y": 1, "x": 2}, "a": {"w": 3}})
    second = ds.to_immutable_dict({"a": {"w": 3}, "b": {"x": 2, "y": 1}})
    assert jax.tree.structure(first) == jax.tree.structure(second)


def test_flatmap_tree_map_returns_flatmaps():
    fm = ds.to_immutable_dict({"a": {"w": jnp.ones([2, 3])}})
    out = jax.tree.map(jnp.shape, fm)
    assert type(out) is ds.FlatMap
    assert type(out["a"]) is ds.FlatMap
    assert out == {"a": {"w": (2, 3)}}


def test_flatmap_key_paths_are_dict_keys():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(fm)[0]]
    assert paths == [(jax.tree_util.DictKey("a"), jax.tree_util.DictKey("w"))]


def test_flatmap_passes_through_jit():
    fm = ds.to_immutable_dict({"a": {"w": jnp.array([1.0, 2.0])}})
    out = jax.jit(lambda t: jax.tree.map(lambda v: 2 * v, t))(fm)
    assert type(out) is ds.FlatMap
    chex.assert_trees_all_close(ds.to_mutable_dict(out), {"a": {"w": np.array([2.0, 4.0])}})


def test_flatmap_deepcopy_gives_equal_flatmap():
    fm = ds.to_immutable_dict({"a": {"w": 1.0}})
    out = copy.deepcopy(fm)
    assert type(out) is ds.FlatMap and type(out["a"]) is ds.FlatMap
    assert out == {"a": {"w": 1.0}}


# traverse


def test_traverse_yields_sorted_by_module_then_name():
    structure = {"b": {"y": 1, "x": 2}, "a": {"w": 3}}
    assert list(ds.traverse(structure)) == [("a", "w", 3), ("b", "x", 2), ("b", "y", 1)]


# filter


def test_filter_keeps_entries_matching_predicate():
    out = ds.filter(lambda m, n, v: n == "w", _unsorted_params())
    assert jax.tree.map(np.shape, out) == {"mlp/~/linear_0": {"w": (4, 3)},
                                           "mlp/~/linear_1": {"w": (3, 2)}}


def test_filter_drops_modules_left_empty():
    out = ds.filter(lambda m, n, v: m == "mlp/~/linear_0", _unsorted_params())
    assert list(out) == ["mlp/~/linear_0"]


def test_filter_returns_sorted_order():
    out = ds.filter(lambda m, n, v: True, _unsorted_params())
    assert _keys(out) == [("mlp/~/linear_0", ["b", "w"]), ("mlp/~/linear_1", ["b", "w"])]


def test_filter_calls_predicate_with_module_name_and_value():
    calls = []
    ds.filter(lambda m, n, v: calls.append((m, n, v)) or True, {"a": {"w": 7}})
    assert calls == [("a", "w", 7)]


def test_filter_returns_plain_dicts_for_flatmap_input():
    out = ds.filter(lambda m, n, v: True, ds.to_immutable_dict({"a": {"w": 1}}))
    assert type(out) is dict and type(out["a"]) is dict


# partition


def test_partition_splits_matching_and_rest():
    matching, rest = ds.partition(lambda m, n, v: n == "b", {"a": {"w": 1, "b": 2}})
    assert matching == {"a": {"b": 2}}
    assert rest == {"a": {"w": 1}}


def test_partition_drops_empty_modules_in_each_output():
    matching, rest = ds.partition(lambda m, n, v: m == "a", {"a": {"w": 1}, "b": {"w": 2}})
    assert (list(matching), list(rest)) == (["a"], ["b"])


def test_partition_returns_sorted_order():
    matching, rest = ds.partition(lambda m, n, v: True, _unsorted_params())
    assert _keys(matching) == [("mlp/~/linear_0", ["b", "w"]), ("mlp/~/linear_1", ["b", "w"])]
    assert rest == {}


# partition_n


def test_partition_n_places_each_entry_at_its_index():
    parts = ds.partition_n(lambda m, n, v: v, {"a": {"x": 0, "y": 2}, "b": {"z": 1}}, 3)
    assert parts == ({"a": {"x": 0}}, {"b": {"z": 1}}, {"a": {"y": 2}})


def test_partition_n_empty_partitions_are_empty_dicts():
    parts = ds.partition_n(lambda m, n, v: 1, {"a": {"w": 1}}, 3)
    assert parts == ({}, {"a": {"w": 1}}, {})


def test_partition_n_returns_sorted_order():
    (part,) = ds.partition_n(lambda m, n, v: 0, _unsorted_params(), 1)
    assert _keys(part) == [("mlp/~/linear_0", ["b", "w"]), ("mlp/~/linear_1", ["b", "w"])]


@pytest.mark.parametrize("index, message", [(5, r"5 must be in range \[0, 2\)"),
                                            (-1, r"-1 must be in range \[0, 2\)")])
def test_partition_n_index_out_of_range_raises_assertion_error(index, message):
    with pytest.raises(AssertionError, match=message):
        ds.partition_n(lambda m, n, v: index, {"a": {"w": 1}}, 2)


# merge


def test_merge_later_structure_wins():
    out = ds.merge({"a": {"w": 1, "b": 2}}, {"a": {"w": 3}})
    assert out == {"a": {"w": 3, "b": 2}}


def test_merge_keeps_first_seen_order():
    out = ds.merge({"b": {"y": 1}}, {"a": {"w": 2}, "b": {"x": 3, "y": 4}})
    assert _keys(out) == [("b", ["y", "x"]), ("a", ["w"])]


def test_merge_of_nothing_is_empty_dict():
    assert ds.merge() == {}


def test_merge_does_not_modify_inputs():
    first = {"a": {"w": 1}}
    ds.merge(first, {"a": {"b": 2}})
    assert first == {"a": {"w": 1}}


@pytest.mark.parametrize(
    "first, second, message",
    [
        (np.zeros([2], np.float32), np.zeros([3], np.float32), r"a\.w: f32\[2\] vs f32\[3\]\."),
        (jnp.zeros([2]), jnp.zeros([2], jnp.bfloat16), r"a\.w: f32\[2\] vs bf16\[2\]\."),
        (jnp.zeros([2, 3]), jnp.zeros([], jnp.int32), r"a\.w: f32\[2,3\] vs s32\[\]\."),
        # The rows below were recorded from Haiku 0.0.17 (black box, merge(check_duplicates=True)).
        (jnp.zeros([2], bool), jnp.zeros([2], jnp.uint8), r"a\.w: bool\[2\] vs u8\[2\]\."),
        (jnp.zeros([2], jnp.int16), jnp.zeros([2], jnp.uint32), r"a\.w: s16\[2\] vs u32\[2\]\."),
        (jnp.zeros([2], jnp.int4), jnp.zeros([2], jnp.float8_e4m3fn),
         r"a\.w: s4\[2\] vs f8_e4m3fn\[2\]\."),
        (jax.random.key(0), jnp.zeros([2]), r"a\.w: key<fry>\[\] vs f32\[2\]\."),
        (1, jnp.zeros([]), r"a\.w: 1 vs f32\[\]\."),
        (np.float64(1), 1.0, r"a\.w: f64\[\] vs 1\.0\."),
        ("s", jnp.zeros([2]), r"a\.w: 's' vs f32\[2\]\."),
        (None, jnp.zeros([2]), r"a\.w: None vs f32\[2\]\."),
    ],
    ids=["shape", "dtype", "shape_and_dtype", "bool_uint", "signed_int", "int4_float8", "key",
         "int_vs_array", "numpy_scalar_vs_float", "str_vs_array", "none_vs_array"],
)
def test_merge_check_duplicates_mismatch_raises_value_error(first, second, message):
    with pytest.raises(ValueError, match="Duplicate array found with different shape/dtype for "
                                         + message):
        ds.merge({"a": {"w": first}}, {"a": {"w": second}}, check_duplicates=True)


def test_merge_check_duplicates_same_shape_and_dtype_later_wins():
    later = np.ones([2], np.float32)
    out = ds.merge({"a": {"w": np.zeros([2], np.float32)}}, {"a": {"w": later}},
                   check_duplicates=True)
    assert out["a"]["w"] is later


@pytest.mark.parametrize("first, second", [(1.0, 2), ("s", "t"), (np.float32(1), jnp.zeros([]))],
                         ids=["numbers", "strings", "numpy_scalar_vs_array"])
def test_merge_check_duplicates_equal_missing_or_same_shape_and_dtype_passes(first, second):
    # Haiku 0.0.17 compares shape and dtype attributes, absent ones included: these pass.
    out = ds.merge({"a": {"w": first}}, {"a": {"w": second}}, check_duplicates=True)
    assert out["a"]["w"] is second


def test_merge_without_check_duplicates_accepts_mismatched_shapes():
    out = ds.merge({"a": {"w": np.zeros([2])}}, {"a": {"w": np.zeros([3])}})
    assert out["a"]["w"].shape == (3,)


# map


def test_map_replaces_each_value_with_fn_result():
    out = ds.map(lambda m, n, v: f"{m}.{n}={v}", {"a": {"w": 1, "b": 2}})
    assert out == {"a": {"w": "a.w=1", "b": "a.b=2"}}


def test_map_returns_sorted_order():
    out = ds.map(lambda m, n, v: v, _unsorted_params())
    assert _keys(out) == [("mlp/~/linear_0", ["b", "w"]), ("mlp/~/linear_1", ["b", "w"])]


# tree_size / tree_bytes


def test_tree_size_counts_elements_over_all_leaves():
    tree = {"a": {"w": jnp.ones([2, 3]), "s": jnp.ones([])}, "b": [np.ones([4], np.int8)]}
    assert ds.tree_size(tree) == 11


def test_tree_size_of_empty_tree_is_zero():
    assert ds.tree_size({}) == 0


def test_tree_size_accepts_shape_dtype_structs():
    assert ds.tree_size({"a": jax.ShapeDtypeStruct((5, 2), jnp.float32)}) == 10


@pytest.mark.parametrize("fn", [ds.tree_size, ds.tree_bytes])
def test_tree_size_and_bytes_python_float_leaf_raises_attribute_error(fn):
    with pytest.raises(AttributeError, match="float"):
        fn({"a": {"w": 1.0}})


def test_tree_bytes_sums_size_times_itemsize():
    tree = {
        "a": {"w": jnp.ones([2, 3], jnp.float32), "b": jnp.ones([3], jnp.bfloat16)},
        "c": np.ones([5], np.int8),
    }
    assert ds.tree_bytes(tree) == 2 * 3 * 4 + 3 * 2 + 5 * 1


# is_subset


@pytest.mark.parametrize(
    "subset, expected",
    [
        ({}, True),
        ({"a": {"w": "other value"}}, True),
        ({"a": {"w": 0, "b": 0}}, True),
        ({"a": {"x": 0}}, False),
        ({"c": {"w": 0}}, False),
    ],
    ids=["empty", "values_differ", "equal_keys", "missing_name", "missing_module"],
)
def test_is_subset_compares_module_and_name_only(subset, expected):
    superset = {"a": {"w": 1, "b": 2}, "b": {"w": 3}}
    assert ds.is_subset(subset=subset, superset=superset) is expected


def test_is_subset_positional_arguments_raise_type_error():
    with pytest.raises(TypeError, match="positional"):
        ds.is_subset({}, {})


# public module


def test_public_module_exports_haiku_names():
    public = importlib.import_module("hk_core.data_structures")
    assert sorted(public.__all__) == PUBLIC_NAMES


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_is_the_private_function(name):
    public = importlib.import_module("hk_core.data_structures")
    assert getattr(public, name) is getattr(ds, name)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_function_documents_an_example(name):
    assert ">>>" in getattr(ds, name).__doc__
