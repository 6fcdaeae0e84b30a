"""The ``hk.experimental.jaxpr_info`` namespace: per-module FLOP and parameter reports.

Example:
    >>> from hk_core.experimental import jaxpr_info
    >>> info = jaxpr_info.make_model_info(jnp.sin, compute_flops=lambda eqn, e: 3)(jnp.ones([3]))
    >>> info.flops
    3
"""

from hk_core._src.inspect.model_info import Expression as Expression
from hk_core._src.inspect.model_info import Module as Module
from hk_core._src.inspect.model_info import format_module as format_module
from hk_core._src.inspect.model_info import make_model_info as make_model_info
from hk_core._src.inspect.model_info_html import as_html as as_html
from hk_core._src.inspect.model_info_html import as_html_page as as_html_page
from hk_core._src.inspect.model_info_html import css as css
from hk_core._src.inspect.model_info_html import js as js

__all__ = ["Expression", "Module", "as_html", "as_html_page", "css", "format_module", "js",
           "make_model_info"]
