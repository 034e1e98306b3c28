"""Progress reporting: a tqdm bar on a terminal, timed log lines otherwise (DVC, Prefect, CI)."""
from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("prefpipe")


class Progress:
    """Counts work done; `update(n, **stats)` shows rate, ETA and the latest stats."""

    def __init__(self, total: int, desc: str, unit: str = "it", every_seconds: float = 5.0,
                 enabled: bool = True):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every_seconds
        self.enabled = enabled  # off on all but the main training process
        self.done, self.start, self.last_log = 0, time.monotonic(), 0.0
        self.stats: dict[str, float] = {}
        self.bar = (tqdm(total=total, desc=desc, unit=unit, leave=False)
                    if enabled and sys.stderr.isatty() else None)

    def update(self, n: int = 1, **stats: float) -> None:
        self.done += n
        self.stats.update(stats)
        if self.bar is not None:
            self.bar.update(n)
            if stats:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in self.stats.items()}, refresh=False)
            return
        now = time.monotonic()
        if not self.enabled:
            return
        if now - self.last_log >= self.every or self.done >= self.total:
            self.last_log = now
            log.info("%s", self.line())

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        stats = " ".join(f"{k}={v:.4g}" for k, v in self.stats.items())
        return (f"{self.desc}: {self.done}/{self.total} {self.unit} "
                f"({100 * self.done / max(self.total, 1):.0f}%) {rate:.1f} {self.unit}/s, "
                f"elapsed {elapsed:.0f}s, eta {eta:.0f}s {stats}").rstrip()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            log.info("%s done", self.line())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
