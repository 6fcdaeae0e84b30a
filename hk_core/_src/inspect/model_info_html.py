"""HTML views of a ``jaxpr_info.Module`` tree: collapsible modules, operations, FLOPs."""

import html

from hk_core._src.inspect import model_info

_CSS = """
.hk-info { font-family: monospace; font-size: 13px; }
.hk-info details { margin-left: 1.2em; border-left: 1px solid #c8d3e0; padding-left: 0.4em; }
.hk-info summary { cursor: pointer; }
.hk-info .hk-name { font-weight: bold; color: #1f4e8c; }
.hk-info .hk-flops { color: #8c3a1f; margin-left: 0.8em; }
.hk-info .hk-params { color: #3a7a2a; margin-left: 0.8em; }
.hk-info .hk-expr { margin-left: 1.6em; white-space: nowrap; }
.hk-info .hk-prim { color: #6b2c91; }
.hk-info .hk-vars { color: #555; }
.hk-info .hk-hidden { color: #999; margin-left: 1.6em; font-style: italic; }
"""

_JS = """
function hkInfoSetAll(root, open) {
  root.querySelectorAll('details').forEach(function (d) { d.open = open; });
}
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('.hk-info').forEach(function (root) {
    var bar = document.createElement('div');
    [['expand all', true], ['collapse all', false]].forEach(function (item) {
      var button = document.createElement('button');
      button.textContent = item[0];
      button.onclick = function () { hkInfoSetAll(root, item[1]); };
      bar.appendChild(button);
    });
    root.insertBefore(bar, root.firstChild);
  });
});
"""


def css() -> str:
    """Returns the stylesheet used by ``as_html`` output.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> '.hk-info' in jaxpr_info.css()
        True
    """
    return _CSS


def js() -> str:
    """Returns the script adding expand/collapse-all buttons to ``as_html`` output.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> 'hkInfoSetAll' in jaxpr_info.js()
        True
    """
    return _JS


def _flops_text(flops: int | None) -> str:
    return "" if flops is None else f"{flops:,} flops"


def _expression_html(expression: model_info.Expression, min_flop: int) -> str:
    invars = html.escape(", ".join(expression.invars))
    outvars = html.escape(", ".join(expression.outvars))
    line = (f'<div class="hk-expr"><span class="hk-prim">{html.escape(expression.primitive)}'
            f'</span> <span class="hk-vars">{invars} &rarr; {outvars}</span>'
            f'<span class="hk-flops">{_flops_text(expression.flops)}</span></div>')
    if expression.submodule is not None:
        line += _module_html(expression.submodule, min_flop)
    return line


def _module_html(module: model_info.Module, min_flop: int) -> str:
    parts = [f'<details{" open" if (module.flops or 0) >= min_flop else ""}><summary>'
             f'<span class="hk-name">{html.escape(module.name)}</span>'
             f'<span class="hk-flops">{_flops_text(module.flops)}</span>']
    if module.params:
        parts.append(f'<span class="hk-params">{module.params:,} params</span>')
    parts.append("</summary>")
    hidden = 0
    for item in module.expressions:
        if isinstance(item, model_info.Module):
            parts.append(_module_html(item, min_flop))
        elif (item.flops or 0) >= min_flop:
            parts.append(_expression_html(item, min_flop))
        else:
            hidden += 1
    if hidden:
        parts.append(f'<div class="hk-hidden">{hidden} operation(s) under {min_flop:,} '
                     "flops not shown</div>")
    parts.append("</details>")
    return "".join(parts)


def as_html(module: model_info.Module, min_flop: int = 1000) -> str:
    """Returns an HTML fragment showing the module tree (style it with ``css()``).

    Modules are collapsible ``<details>`` elements, open when they cost at least
    ``min_flop`` FLOPs; operations under ``min_flop`` are counted but not listed.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> info = jaxpr_info.make_model_info(lambda x: x @ x.T)(jnp.ones([64, 64]))
        >>> fragment = jaxpr_info.as_html(info, min_flop=0)
        >>> fragment.startswith('<div class="hk-info">'), 'dot_general' in fragment
        (True, True)
    """
    return f'<div class="hk-info">{_module_html(module, min_flop)}</div>'


def as_html_page(module: model_info.Module, min_flop: int = 1000,
                 include_js_css: bool = True) -> str:
    """Returns a standalone HTML page showing the module tree.

    Args:
        module: The root returned by a ``make_model_info`` function.
        min_flop: Operations cheaper than this are counted but not listed.
        include_js_css: Embed ``css()`` and ``js()`` in the page.

    Example:
        >>> from hk_core.experimental import jaxpr_info
        >>> info = jaxpr_info.make_model_info(jnp.sin)(jnp.ones([3]))
        >>> page = jaxpr_info.as_html_page(info)
        >>> page.startswith('<!DOCTYPE html>'), '<style>' in page
        (True, True)
    """
    head = f"<title>{html.escape(module.name)}</title>"
    if include_js_css:
        head += f"<style>{css()}</style><script>{js()}</script>"
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{head}</head>"
            f"<body>{as_html(module, min_flop)}</body></html>\n")
