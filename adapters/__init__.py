"""Platform adapters: each turns one platform into InboundMessage and back.

`ADAPTERS` is the explicit registry read by the composition root (`civicdesk serve`): an adapter
exists for the configuration when it is listed here, and nowhere else.
"""

from adapters import webchat, webhook
from bot.config import AdapterSpec

ADAPTERS: dict[str, AdapterSpec] = {
    spec.name: spec
    for spec in (
        webchat.SPEC,
        webhook.SPEC,
    )
}
