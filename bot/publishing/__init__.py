"""publishing: announcements written once and fitted to every channel.

Pure (no I/O but reading the announcement file): `announcement` reads and validates the YAML an
office writes, `fitting` cuts it to each platform's length rules. It sits above answering (it
reuses the platforms' counters and the sentence boundaries the composer knows) and below storage
and the gateway, which queue and send what it fitted: the CLI, the /admin page and the report use
it, and nothing in it knows about databases or HTTP. May import: answering, platform.
"""
