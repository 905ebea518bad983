"""`python -m bot` runs the civicdesk command line."""

from bot.cli.main import main

raise SystemExit(main())
