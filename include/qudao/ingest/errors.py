"""The one exception of a file refused whole."""

from __future__ import annotations


class FileRefused(Exception):
    """The whole file cannot be loaded; the message says why."""
