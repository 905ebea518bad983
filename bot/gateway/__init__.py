"""The running service: the aiohttp app and its routes (webhooks, web chat, health, metrics),
the workers that answer inbox rows (`pipeline`) and deliver the outbox (`delivery`), polling of
platforms without push, and the live knowledge reload. It knows adapters only through
`bot.platform`. May import: storage, config, tickets, answering, platform, runtime.
"""
