"""civicdesk: an inquiry desk for public institutions on social and messaging platforms.

Packages, bottom to top (a package imports only packages below it; docs/architecture.md):
platform, runtime < answering < tickets < config < storage < gateway < reports < admin < cli.
"""
