"""Process-level helpers with no civicdesk knowledge: background tasks, batching, pacing (token
buckets, back-off), memory (freezing long-lived objects out of the collector), metrics, and
privacy (masking personal data in logs and reports). May import nothing of civicdesk's.
"""
