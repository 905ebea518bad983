"""The contract between the core and the platforms: platform-neutral messages (InboundMessage,
OutboundMessage, Publication, SendResult), the Adapter/Poller/Publisher protocols and their errors,
and each platform's length rules (`lengths`). Pure; may import nothing of civicdesk's.
Adapters (`adapters/`) are written against this package.
"""
