"""Platform adapters: each turns one platform into InboundMessage and back.

`ADAPTERS` is the explicit registry read by the composition root (`civicdesk serve`): an adapter
exists for the configuration when it is listed here, and nowhere else. Its module is imported
only when a configured channel (or the README check) asks for it, so adapters a deployer has not
configured cost nothing at start-up: not their imports (AES, SMTP, ...), not a session, not a task.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from types import ModuleType

from bot.config.settings import AdapterSpec, ConfigError

ADAPTER_MODULES: dict[str, str] = {
    "webchat": "adapters.webchat",
    "webhook": "adapters.webhook",
    "telegram": "adapters.telegram",
    "slack": "adapters.slack",
    "line": "adapters.line",
    "wechat": "adapters.wechat",
    "weibo": "adapters.weibo",
    "mastodon": "adapters.mastodon",
    "matrix": "adapters.matrix",
    "email": "adapters.email",
    "x": "adapters.x",
    "whatsapp": "adapters.whatsapp",
    "messenger": "adapters.messenger",
}
"""Adapter name → the module whose `SPEC` describes it."""

ADAPTER_EXTRAS: dict[str, str] = {"wechat": "wechat", "email": "email"}
"""Adapter name → the optional extra of pyproject.toml that installs what its module imports
(cryptography for WeChat's AES mode; aiosmtplib and aioimaplib for e-mail)."""


class MissingExtra(ConfigError):
    """A configured adapter's module imports a package of an extra that is not installed."""

    def __init__(self, adapter: str, extra: str, module: str) -> None:
        super().__init__(
            f"the {adapter} adapter needs {module}, which is not installed: "
            f"pip install 'civicdesk[{extra}]'"
        )
        self.adapter = adapter
        self.extra = extra
        self.module = module


class AdapterRegistry(Mapping[str, AdapterSpec]):
    """The adapters by name; a module is imported on first lookup of its name."""

    def __init__(self, modules: Mapping[str, str], extras: Mapping[str, str] | None = None) -> None:
        self._modules = dict(modules)
        self._extras = dict(extras or {})
        self._loaded: dict[str, AdapterSpec] = {}

    def __getitem__(self, name: str) -> AdapterSpec:
        spec = self._loaded.get(name)
        if spec is None:
            spec = self._import(name).SPEC
            if not isinstance(spec, AdapterSpec) or spec.name != name:
                raise TypeError(f"{self._modules[name]}.SPEC is not the AdapterSpec of {name!r}")
            self._loaded[name] = spec
        return spec

    def _import(self, name: str) -> ModuleType:
        """The adapter's module; MissingExtra (one line, naming the pip command) when a package
        of its extra is absent. Any other missing module is a broken install: raised as is."""
        try:
            return import_module(self._modules[name])
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").partition(".")[0]
            extra = self._extras.get(name)
            if extra is None or not missing or missing in ("adapters", "bot"):
                raise
            raise MissingExtra(name, extra, missing) from exc

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def loaded(self) -> frozenset[str]:
        """The adapters imported so far (start-up imports only the configured ones)."""
        return frozenset(self._loaded)


ADAPTERS = AdapterRegistry(ADAPTER_MODULES, ADAPTER_EXTRAS)
