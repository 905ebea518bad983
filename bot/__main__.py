"""`python -m bot` runs the civicdesk command line."""

from bot.cli import main

raise SystemExit(main())
