"""The report of public concerns (`civicdesk report`, /admin/report): what the public asks,
what was answered, what went to people and how fast, as text, JSON and HTML with SVG charts.
May import: storage, tickets, answering, runtime.
"""
