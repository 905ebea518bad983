"""The knowledge base of a running server: reloaded when its YAML files change or on SIGHUP.

A reload that fails keeps the last good Desk serving: a staff member's typo must never take the
service down. The failure is logged with file:line and kept for /readyz until a reload succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePath

from bot.answering.desk import ClarifyMemory, Desk
from bot.answering.knowledge import KnowledgeBase, KnowledgeError, Problem, load_knowledge
from bot.answering.semantic import QueryVectors
from bot.config.semantic import semantic_model
from bot.config.settings import Settings
from bot.runtime.memory import freeze_long_lived
from bot.runtime.metrics import Metrics

log = logging.getLogger("civicdesk.knowledge")

POLL_SECONDS = 2.0
Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """Name, modification time and size of every YAML file: any edit, addition or removal
    changes it. Polling this every few seconds costs a handful of stat calls."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    except OSError:
        return ()
    stats = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between the listing and the stat: the next poll sees it
        stats.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(stats)


class KnowledgeHolder:
    """Holds the current Desk; `desk` is what workers call for every message."""

    def __init__(
        self,
        folder: Path,
        build: Callable[[KnowledgeBase], Desk],
        *,
        poll_seconds: float = POLL_SECONDS,
        metrics: Metrics | None = None,
        load: Callable[[Path], KnowledgeBase] = load_knowledge,
        also_watch: Sequence[Path] = (),
    ) -> None:
        """Loads the knowledge base at once; raises KnowledgeError if it has errors, since
        there is no earlier version to fall back on. `load` and `also_watch`: an institution's
        knowledge is its folder on top of the shared one (bot.answering.knowledge_shared)."""
        self.folder = folder
        self._build = build
        self.poll_seconds = poll_seconds
        self._metrics = metrics
        self._load = load
        self._folders = (folder, *also_watch)
        self._seen = self._fingerprint()
        self._desk = build(load(folder))
        self.loaded_at = datetime.now(UTC)
        self.problems: tuple[Problem, ...] = ()  # those of the last failed reload
        self.error: str | None = None  # why the last reload failed, until one succeeds
        self.failed_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[bool]] = set()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> KnowledgeHolder:
        memory = ClarifyMemory()  # shared by every version, so a reload does not forget questions
        # Raises SemanticUnavailable for CIVICDESK_SEMANTIC=on without the model: at start-up.
        semantic = semantic_model(settings)
        # Question vectors do not depend on the knowledge base: every version shares them.
        questions = QueryVectors(semantic.embed_questions) if semantic else None

        def build(knowledge: KnowledgeBase) -> Desk:
            return Desk(
                knowledge,
                settings.policy,
                default_lang=settings.default_lang,
                memory=memory,
                semantic=semantic,
                questions=questions,
            )

        return cls(settings.knowledge_path, build, poll_seconds=poll_seconds, metrics=metrics)

    @property
    def desk(self) -> Desk:
        return self._desk

    def get_desk(self) -> Desk:
        """The current desk, as a plain callable for the workers."""
        return self._desk

    def reload_now(self) -> bool:
        """Load the folder again; True if the new version serves now. Blocking: see `reload`."""
        self._seen = self._fingerprint()
        try:
            desk = self._build(self._load(self.folder))
        except KnowledgeError as exc:
            self.error = str(exc)
            self.problems = tuple(exc.problems)
            self.failed_at = datetime.now(UTC)
            log.error(
                "knowledge reload failed; still serving the version loaded at %s. Fix:\n%s",
                self.loaded_at.isoformat(timespec="seconds"),
                exc,
            )
            self._count("failed")
            return False
        self._desk = desk
        freeze_long_lived()  # the new version is long-lived; the old one is freed
        self.loaded_at = datetime.now(UTC)
        self.error = self.failed_at = None
        self.problems = ()
        log.info("knowledge reloaded from %s: %d entries", self.folder, len(desk.knowledge.entries))
        self._count("ok")
        return True

    async def reload(self) -> bool:
        """Reload in a thread (building the matcher takes a while) and never two at once."""
        async with self._lock:
            return await asyncio.to_thread(self.reload_now)

    def request_reload(self) -> None:
        """For a signal handler (SIGHUP): reload soon, without waiting for it."""
        task = asyncio.get_running_loop().create_task(self.reload())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def changed(self) -> bool:
        return self._fingerprint() != self._seen

    def _fingerprint(self) -> Fingerprint:
        return tuple(stat for folder in self._folders for stat in fingerprint(folder))

    async def watch(self) -> None:
        """Reload whenever the YAML files change; runs until cancelled."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            if self.changed():
                await self.reload()

    def start(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self.watch())

    async def stop(self) -> None:
        tasks = [t for t in (self._watcher, *self._pending) if t is not None]
        self._watcher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status(self) -> dict[str, object]:
        """For /readyz."""
        return {
            "ok": self.error is None,
            "entries": len(self._desk.knowledge.entries),
            "matcher": self._desk.matcher_name,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "reload_error": self.error,
            "failed_at": self.failed_at.isoformat(timespec="seconds") if self.failed_at else None,
        }

    def public_status(self) -> dict[str, object]:
        """For the unauthenticated /readyz: `status()` with the reload error cut to where the
        problems are (file names and lines), since its messages quote the files and their
        absolute paths. The whole text is in the log and on /admin/knowledge."""
        status = self.status()
        if self.error is not None:
            places = sorted({_place(problem) for problem in self.problems})
            shown = ", ".join(places[:MAX_PLACES]) + (", ..." if len(places) > MAX_PLACES else "")
            status["reload_error"] = f"{shown}: the knowledge base has errors (see the log)"
        return status

    def _count(self, result: str) -> None:
        if self._metrics is not None:
            self._metrics.knowledge_reloads.inc(result)


MAX_PLACES = 10  # problem locations shown on /readyz


def _place(problem: Problem) -> str:
    name = PurePath(problem.file).name or "knowledge"
    return f"{name}:{problem.line}" if problem.line else name
