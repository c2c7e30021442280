"""Showing a computed sentence in a chapter: Markdown when there is something to say, nothing otherwise."""

from __future__ import annotations


def say(text: str | None) -> None:
    """Display ``text`` as Markdown in the notebook; ``None`` or ``""`` (nothing to say) shows nothing."""
    if text:
        from IPython.display import Markdown, display

        display(Markdown(text))
