"""Keep the garbage collector's full passes short while serving.

After start-up the process holds some 130,000 long-lived objects (the knowledge base and its
index, the libraries' modules). CPython's full collection walks every one of them: about 70 ms
here, during which the event loop answers nothing; under load such passes come every few
seconds and made most of the slowest replies. Moving what exists after start-up to the
collector's permanent generation (`gc.freeze`) leaves the full passes only the objects made
since. A knowledge reload replaces the largest of those objects, so it thaws them first and
collects once, freeing the old version, then freezes again.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_long_lived() -> None:
    """Collect once, then exempt every object alive now from later collections."""
    started = time.perf_counter()
    gc.unfreeze()  # an earlier freeze may hold what is garbage now (a replaced knowledge base)
    gc.collect()
    gc.freeze()
    log.debug(
        "%d long-lived objects frozen in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
