"""The one exception type for bad user input.

It subclasses ValueError so notebook users can catch the familiar type, and the
CLI turns it into a one-line message with exit code 2 instead of a traceback.
"""

from __future__ import annotations


class ArchvizError(ValueError):
    """Bad input from the user: an unknown name, a malformed shape, a corrupt file."""
