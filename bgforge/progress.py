"""Progress: a tqdm bar on a terminal, periodic log lines otherwise (cron, batch logs)."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, desc: str, unit: str = "img", interval: float = 30.0, enabled: bool = True):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.done, self.start, self._last = 0, time.monotonic(), time.monotonic()
        on_terminal = enabled and sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True) if on_terminal else None
        self.enabled = enabled

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.enabled and (now - self._last >= self.interval or self.done == self.total):
            self._last = now
            rate = self.done / max(now - self.start, 1e-9)
            print(f"[{time.strftime('%H:%M:%S')}] {self.desc}: {self.done}/{self.total} {self.unit} "
                  f"({100 * self.done / max(self.total, 1):.0f}%, {rate:.1f} {self.unit}/s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
