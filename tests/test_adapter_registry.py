"""Adapters a deployer has not configured cost nothing at start-up: their modules (and what
they need, such as AES for WeChat or IMAP for e-mail) are not even imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from adapters import ADAPTER_MODULES, ADAPTERS

ROOT = Path(__file__).resolve().parents[1]

# Start the app's composition as `civicdesk serve` does, in a fresh interpreter, and report
# which adapter modules and heavy libraries got imported.
PROBE = """
import json, os, sys
from adapters import ADAPTERS
from bot.cli.serve import Parts
from bot.config.settings import Settings
parts = Parts.assemble(Settings.from_env(os.environ))
print(json.dumps({
    "channels": sorted(parts.adapters),
    "loaded": sorted(ADAPTERS.loaded()),
    "modules": sorted(m for m in sys.modules if m.startswith(("adapters.", "cryptography",
                      "aiosmtplib", "aioimaplib"))),
}))
"""


def probe(environ: dict[str, str]) -> dict[str, list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CIVICDESK_KNOWLEDGE": str(ROOT / "knowledge"), **environ},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(completed.stdout.splitlines()[-1])
    return result


def test_only_the_configured_adapters_are_imported() -> None:
    seen = probe(
        {
            "CIVICDESK_CHANNELS": "webchat,hook",
            "CIVICDESK_HOOK_ADAPTER": "webhook",
            "CIVICDESK_HOOK_SECRET": "s" * 32,
            "CIVICDESK_HOOK_OUTBOUND_URL": "http://127.0.0.1:9/replies",
        }
    )
    assert seen["channels"] == ["hook", "webchat"]
    assert seen["loaded"] == ["webchat", "webhook"]
    assert not [
        m
        for m in seen["modules"]
        if m.split(".")[0] in ("cryptography", "aiosmtplib", "aioimaplib")
    ]
    unconfigured = {
        module for name, module in ADAPTER_MODULES.items() if name not in ("webchat", "webhook")
    }
    assert not unconfigured & set(seen["modules"])


def test_a_configured_platform_brings_its_own_dependencies() -> None:
    seen = probe(
        {
            "CIVICDESK_CHANNELS": "wechat",
            "CIVICDESK_WECHAT_TOKEN": "token",
            "CIVICDESK_WECHAT_APP_ID": "wx0123456789abcdef",
            "CIVICDESK_WECHAT_APP_SECRET": "secret",
        }
    )
    assert seen["loaded"] == ["wechat"]
    assert "adapters.wechat" in seen["modules"]


def test_every_registered_adapter_loads_and_names_itself() -> None:
    for name in ADAPTER_MODULES:
        assert ADAPTERS[name].name == name


def test_x_whatsapp_and_messenger_start_with_only_their_documented_keys() -> None:
    seen = probe(
        {
            "CIVICDESK_CHANNELS": "wa,page,court-x",
            "CIVICDESK_WA_ADAPTER": "whatsapp",
            "CIVICDESK_WA_VERIFY_TOKEN": "verify",
            "CIVICDESK_WA_APP_SECRET": "app-secret",
            "CIVICDESK_WA_ACCESS_TOKEN": "token",
            "CIVICDESK_WA_PHONE_NUMBER_ID": "1122334455667",
            "CIVICDESK_PAGE_ADAPTER": "messenger",
            "CIVICDESK_PAGE_VERIFY_TOKEN": "verify",
            "CIVICDESK_PAGE_APP_SECRET": "app-secret",
            "CIVICDESK_PAGE_ACCESS_TOKEN": "token",
            "CIVICDESK_COURT_X_ADAPTER": "x",
            "CIVICDESK_COURT_X_CONSUMER_KEY": "key",
            "CIVICDESK_COURT_X_CONSUMER_SECRET": "secret",
            "CIVICDESK_COURT_X_ACCESS_TOKEN": "token",
            "CIVICDESK_COURT_X_ACCESS_TOKEN_SECRET": "token-secret",
        }
    )
    assert seen["channels"] == ["court-x", "page", "wa"]
    assert seen["loaded"] == ["messenger", "whatsapp", "x"]
    others = {m for n, m in ADAPTER_MODULES.items() if n not in ("x", "whatsapp", "messenger")}
    assert not others & set(seen["modules"])
