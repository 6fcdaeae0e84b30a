"""to_dot / abstract_to_dot: nodes per primitive, data-flow edges, clusters per module."""

import re

import jax
import jax.numpy as jnp
import pytest

import hk_core as hk

X = jnp.ones([3])


def _labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'(n\d+) \[label="((?:[^"\\]|\\.)*)"', dot))


def _edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"(n\d+) -> (n\d+);", dot)


def _flow(dot: str) -> set[tuple[str, str]]:
    """Edges as (source label, destination label), first label line only."""
    labels = {k: v.split("\\n")[0] for k, v in _labels(dot).items()}
    return {(labels[a], labels[b]) for a, b in _edges(dot)}


def _sin_twice(x):
    return jnp.sin(x) * 2.0


def test_to_dot_is_a_digraph_named_after_the_function():
    dot = hk.to_dot(_sin_twice)(X)
    assert dot.startswith("digraph G {\n") and dot.endswith("}\n")
    assert 'label="_sin_twice";' in dot


def test_to_dot_has_a_node_per_primitive_with_output_shape():
    labels = set(_labels(hk.to_dot(_sin_twice)(X)).values())
    assert {"args[0]\\nf32[3]", "sin\\nf32[3]", "mul\\nf32[3]", "output\\nf32[3]"} <= labels


def test_to_dot_edges_follow_the_data():
    assert _flow(hk.to_dot(_sin_twice)(X)) == {
        ("args[0]", "sin"), ("sin", "mul"), ("2.0", "mul"), ("mul", "output")}


def test_to_dot_reads_through_jit():
    flow = _flow(hk.to_dot(lambda x: jax.jit(jnp.cos)(x) + 1.0)(X))
    assert ("args[0]", "cos") in flow and ("cos", "add") in flow
    assert not any("jit" in label for edge in flow for label in edge)


def test_to_dot_labels_inputs_and_outputs_by_tree_path():
    dot = hk.to_dot(lambda d: {"y": d["x"] + 1})({"x": X})
    labels = set(_labels(dot).values())
    assert "args[0]['x']\\nf32[3]" in labels and "output['y']\\nf32[3]" in labels


def test_to_dot_clusters_each_module_call():
    f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    x = jnp.ones([1, 4])
    dot = hk.to_dot(f.apply)(f.init(jax.random.PRNGKey(0), x), None, x)
    mlp = dot.index('label="mlp";')
    linear_0 = dot.index('label="linear_0";')
    linear_1 = dot.index('label="linear_1";')
    assert mlp < linear_0 < linear_1
    first_dot = dot.index('[label="dot_general\\nf32[1,3]"]')
    assert linear_0 < first_dot < linear_1  # linear_0's matmul sits in its cluster


def test_to_dot_without_profiler_name_scopes_has_no_clusters():
    f = hk.transform(lambda x: hk.Linear(2)(x))
    x = jnp.ones([1, 4])
    params = f.init(jax.random.PRNGKey(0), x)
    with hk.config.context(profiler_name_scopes=False):
        dot = hk.to_dot(f.apply)(params, None, x)
    assert "subgraph" not in dot


def test_abstract_to_dot_matches_to_dot_on_same_shapes():
    abstract = hk.experimental.abstract_to_dot(_sin_twice)(jax.ShapeDtypeStruct((3,), jnp.float32))
    assert abstract == hk.to_dot(_sin_twice)(X)


def test_to_dot_keeps_python_arguments_static():
    def f(x, double):
        return x * 2 if double else x

    labels = set(_labels(hk.to_dot(f)(X, True)).values())
    assert "mul\\nf32[3]" in labels
    assert "mul\\nf32[3]" not in set(_labels(hk.to_dot(f)(X, False)).values())


def test_to_dot_escapes_quotes_in_scope_names():
    def f(x):
        with jax.named_scope('say "hi"'):
            return jnp.sin(x)

    assert 'label="say \\"hi\\"";' in hk.to_dot(f)(X)


def test_experimental_to_dot_is_the_top_level_one():
    assert hk.experimental.to_dot is hk.to_dot


def test_to_dot_propagates_errors_from_the_function():
    with pytest.raises(TypeError, match="add got incompatible shapes"):
        hk.to_dot(lambda x: x + jnp.ones([2]))(X)
