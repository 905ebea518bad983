"""50 institutions and 200 channels on one deployment, against one institution of the same total
size: start-up time, memory and answer latency, and their ratios.

Run from the project root:

    .venv/bin/python benchmarks/institutions.py [--institutions 50] [--own 20] [--queries 400]

The knowledge is made from the sample FAQ (knowledge/*.yaml, 59 entries) as the shared folder,
and for each institution `--own` entries of its own: copies of sample entries under new ids with
the institution's name in the answer (half of them overriding a shared entry by id). Four
channels per institution. The many-institution deployment is what `civicdesk serve` builds with
CIVICDESK_INSTITUTIONS (`bot.gateway.institutions.InstitutionDesks`: one matcher per
institution, each over the shared entries and its own); the baseline is one institution whose
folder holds every entry once (the shared ones and every institution's own). Questions are the
entries' own phrasings, asked on a random channel; latency is `desk.respond` after routing.

It prints the figures and the ratios (many / one); it always exits 0.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.answering.desk import Desk  # noqa: E402
from bot.answering.knowledge import load_knowledge  # noqa: E402
from bot.config.institutions import parse_institutions  # noqa: E402
from bot.config.settings import Settings  # noqa: E402
from bot.gateway.institutions import InstitutionDesks  # noqa: E402
from bot.gateway.reload import KnowledgeHolder  # noqa: E402
from bot.tickets.handoff import Handoff  # noqa: E402

SAMPLE = ROOT / "knowledge"


def _entries() -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    for path in sorted(SAMPLE.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        entries.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["entries"])
    return entries


def _own(entries: list[dict[str, object]], name: str, count: int, rng: random.Random) -> list:
    own = []
    for n, entry in enumerate(rng.sample(entries, count)):
        copy = dict(entry)
        copy.pop("valid_until", None)
        if n % 2:  # a new entry of its own: a new id, its name in the phrasings
            copy["id"] = f"{name}-{entry['id']}"
            questions = entry["questions"]
            assert isinstance(questions, dict)
            copy["questions"] = {
                lang: [f"{name} {q}" for q in phrasings] for lang, phrasings in questions.items()
            }
        answer = entry["answer"]
        assert isinstance(answer, dict)
        copy["answer"] = {lang: f"{name}: {text}" for lang, text in answer.items()}
        own.append(copy)
    return own


def _write(folder: Path, entries: list) -> None:
    folder.mkdir(parents=True)
    (folder / "own.yaml").write_text(
        yaml.safe_dump({"topic": "Own", "entries": entries}, allow_unicode=True), encoding="utf-8"
    )


def _rss_mb() -> float:
    """The process's resident memory (Linux /proc; tracemalloc would slow the build down)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _measure(build):  # type: ignore[no-untyped-def]
    """Seconds to build, and the resident memory it added (MB), and what was built."""
    gc.collect()
    before = _rss_mb()
    started = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - started
    gc.collect()
    return seconds, _rss_mb() - before, built


def _latency(ask, questions: list[tuple[str, str]]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for channel, text in questions:
        started = time.perf_counter()
        ask(channel, text)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=50)
    parser.add_argument("--own", type=int, default=20)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument(
        "--part",
        choices=("both", "one", "many"),
        default="both",
        help="both (default): run each in a fresh process and compare; one/many: that one",
    )
    args = parser.parse_args()
    if args.part == "both":
        return _compare(args)
    rng = random.Random(14)
    shared = _entries()
    names = [f"court{n:02d}" for n in range(args.institutions)]
    channels = {
        name: [f"{name}-{kind}" for kind in ("weibo", "wechat", "web", "mail")] for name in names
    }
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        own = {name: _own(shared, name, args.own, rng) for name in names}
        for name in names:
            _write(base / name, own[name])
        # The baseline: one institution's folder with every entry once (overrides renamed so
        # that ids stay unique: the same number of entries and phrasings).
        everything = [dict(e) for e in shared]
        shared_ids = {e["id"] for e in shared}
        for name, entries in own.items():
            everything.extend(
                {**e, "id": f"{name}-x-{e['id']}"} if e["id"] in shared_ids else e for e in entries
            )
        for entry in everything:
            entry.pop("valid_until", None)
        _write(base / "one", everything)
        all_channels = [c for name in names for c in channels[name]]
        settings = Settings.from_env({"CIVICDESK_CHANNELS": ",".join(all_channels)})
        root = {
            "shared": str(SAMPLE),
            "institutions": [
                {
                    "name": name,
                    "knowledge": str(base / name),
                    "prefix": f"{n:02d}".replace("0", "A").replace("1", "B"),
                    "channels": channels[name],
                }
                for n, name in enumerate(names)
            ],
        }
        institutions = parse_institutions(root, settings, base=base)

        Desk(load_knowledge(SAMPLE)).respond("诉讼费怎么交")  # imports and lazy tables, once
        if args.part == "one":
            seconds, added, holder = _measure(
                lambda: KnowledgeHolder(base / "one", lambda kb: Desk(kb, settings.policy))
            )
            assert isinstance(holder, KnowledgeHolder)
            indexed = len(holder.desk.knowledge.entries)

            def ask(_channel: str, text: str) -> object:
                return holder.desk.respond(text, channel="webchat")
        else:
            seconds, added, desks = _measure(
                lambda: InstitutionDesks.build(settings, institutions, Handoff())
            )
            assert isinstance(desks, InstitutionDesks)
            indexed = sum(len(h.desk.knowledge.entries) for h in desks.holders.values())

            def ask(channel: str, text: str) -> object:
                return desks.route(channel)[0].respond(text, channel="webchat")

        questions = []
        for _ in range(args.queries):
            name = rng.choice(names)
            entry = rng.choice(own[name] + shared)
            phrasings = [q for qs in entry["questions"].values() for q in qs]
            questions.append((rng.choice(channels[name]), rng.choice(phrasings)))
        median, p99 = _latency(ask, questions)
    print(json.dumps({"indexed": indexed, "seconds": seconds, "mb": added, "median": median,
                      "p99": p99, "channels": len(all_channels)}))  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Each deployment built in a fresh process: its start-up and memory are its own."""
    results = {}
    for part in ("one", "many"):
        sizes = ["--institutions", str(args.institutions), "--own", str(args.own)]
        command = [sys.executable, __file__, "--part", part, *sizes, "--queries", str(args.queries)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[part] = json.loads(done.stdout.strip().splitlines()[-1])
    many, one = results["many"], results["one"]
    print(
        f"{args.institutions} institutions, {many['channels']} channels; "
        f"{len(load_knowledge(SAMPLE).entries)} shared entries, {args.own} own each"
    )
    print(f"{'':28}{'many':>12}{'one':>12}{'ratio':>10}")
    rows = [
        ("entries indexed", "indexed"),
        ("start-up (s)", "seconds"),
        ("memory added (MB, RSS)", "mb"),
        ("answer median (ms)", "median"),
        ("answer p99 (ms)", "p99"),
    ]
    for label, key in rows:
        print(f"{label:<28}{many[key]:>12.3f}{one[key]:>12.3f}{many[key] / one[key]:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
