"""The settings: read once from the environment and `.env`, validated, one table (SETTINGS) that
the docs are checked against; channel settings; the staff side as one Handoff.
May import: tickets, answering, platform, runtime.
"""
