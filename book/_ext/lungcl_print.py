"""The single-page HTML that ``lungcl book --pdf`` prints: nodes registered for the html builder only
are given to the singlehtml builder too.

MyST-NB registers its collapsed-cell node (``HideCodeCellNode``, from the ``hide-cell`` tags that
collapse a chapter's parameter cells) for the ``html`` builder alone, so ``--builder singlehtml``
stopped at the first collapsed cell. The same visitors serve: singlehtml writes HTML with the same
translator class.
"""

from __future__ import annotations

from typing import Any


def _share_html_visitors(app: Any) -> None:
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    html, single = handlers.get("html", {}), handlers.setdefault("singlehtml", {})
    for node, visitors in html.items():
        single.setdefault(node, visitors)


def setup(app: Any) -> dict:
    app.connect("builder-inited", _share_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
