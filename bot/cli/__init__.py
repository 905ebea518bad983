"""The command line (`civicdesk ...`) and the composition root: `serve` and `wiring` are the only
places that join the settings, the concrete adapters (`adapters.ADAPTERS`), storage and the gateway.
May import everything.
"""
