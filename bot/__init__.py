"""civicdesk: an inquiry desk for public institutions on social platforms."""
