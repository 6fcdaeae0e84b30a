"""jaxpr_info.as_html / as_html_page / css / js."""

import jax.numpy as jnp

from hk_core._src.inspect import model_info
from hk_core.experimental import jaxpr_info


def _info():
    return jaxpr_info.make_model_info(lambda x: jnp.sin(x @ x.T) + 1.0, name="f<1>",
                                      compute_flops=model_info.estimated_flops)(
        jnp.ones([16, 16]))


def test_as_html_lists_operations_over_min_flop_and_counts_the_rest():
    fragment = jaxpr_info.as_html(_info(), min_flop=1000)
    assert fragment.startswith('<div class="hk-info">') and fragment.endswith("</div>")
    assert "dot_general" in fragment  # 2*16*16*16 = 8192 flops
    assert ">sin<" not in fragment  # 256 flops
    assert "3 operation(s) under 1,000 flops not shown" in fragment  # transpose, sin, add


def test_as_html_min_flop_zero_lists_everything():
    fragment = jaxpr_info.as_html(_info(), min_flop=0)
    assert ">sin<" in fragment and ">add<" in fragment


def test_as_html_escapes_names():
    assert "f&lt;1&gt;" in jaxpr_info.as_html(_info())


def test_as_html_page_embeds_css_and_js_unless_asked_not_to():
    page = jaxpr_info.as_html_page(_info())
    assert page.startswith("<!DOCTYPE html>")
    assert jaxpr_info.css() in page and jaxpr_info.js() in page
    bare = jaxpr_info.as_html_page(_info(), include_js_css=False)
    assert "<style>" not in bare and "<script>" not in bare
    assert jaxpr_info.as_html(_info()) in bare
