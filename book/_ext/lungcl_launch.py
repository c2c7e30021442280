"""Launch buttons that open a chapter's own text notebook.

The book's chapter pages are the executed copies ``notebooks/_executed/NN_name.ipynb``, which are not
in the repository (the build writes them). sphinx-book-theme's launch buttons (JupyterHub through
nbgitpuller, Binder; set in ``_config.yml``) would open that missing path; this points them at the
chapter's source ``notebooks/NN_name.py`` instead, which JupyterLab opens as a notebook through jupytext.
Nothing happens while no launch service is set (the default: the book points at no remote service).
"""

from __future__ import annotations

from typing import Any

EXECUTED = "notebooks/_executed/"


def source_url(url: str, pagename: str) -> str:
    """``url`` with the executed notebook's path replaced by the chapter's text notebook."""
    if not pagename.startswith(EXECUTED):
        return url
    name = pagename[len(EXECUTED):]
    return url.replace(f"{EXECUTED}{name}.ipynb", f"notebooks/{name}.py")


def _point_at_sources(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    for group in context.get("header_buttons", []):
        if isinstance(group, dict) and group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                if button.get("type") == "link" and "url" in button:
                    button["url"] = source_url(button["url"], pagename)


def setup(app: Any) -> dict:
    # after sphinx-book-theme's add_launch_buttons (priority 501), before the page is written
    app.connect("html-page-context", _point_at_sources, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
