"""Clean pages in the browser: each script once, and a valid colour mode on a reader's first visit.

Two quirks of the toolchain threw console errors on every page. sphinx-thebe adds a body-only script after the builder has started; Sphinx keeps it once as
filename ``None`` and again, from its registry, as ``''``, so every page declared
``const THEBE_JS_URL`` twice and the browser threw a SyntaxError: the duplicate is dropped. sphinx-book-theme leaves
pydata-sphinx-theme's ``default_mode`` (an ``html_context`` value) empty, which the theme reports as an invalid mode on a
first visit: it is set to ``auto`` (what the theme then falls back to anyway). tests/test_book.py
opens every page in Chromium and checks the console.
"""

from __future__ import annotations

from typing import Any


def _one_of_each(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", script) or "", getattr(script, "priority", 0),
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def _default_mode(app: Any, config: Any) -> None:
    context = dict(config.html_context or {})
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
        config.html_context = context


def setup(app: Any) -> dict:
    app.connect("config-inited", _default_mode)
    app.connect("html-page-context", _one_of_each)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
