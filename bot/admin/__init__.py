"""/admin: the operators' pages, server-rendered (Jinja2, autoescaped), usable without
JavaScript: tickets (the list; one ticket: answer, claim, note, close), dead-lettered deliveries
(retry, discard), the knowledge base's state, and the report of public concerns.

Sign-in with an operator account (`civicdesk users add`) or the office's shared password
(CIVICDESK_ADMIN_PASSWORD); a signed session cookie (`bot.admin.sessions`); a CSRF token on every
form and a limit on wrong passwords (`bot.admin.guard`, `bot.admin.signin`).

May import: gateway (the app it is mounted on), reports, storage, tickets, config, answering,
platform, runtime. Mounted by the composition root (`bot.cli.serve`), never by the gateway.
"""
