"""The error every configuration problem becomes (turned into one line and exit status 2 by the
command line)."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and what it should hold."""
