"""The test side of ``python -m tests.store.workers leader``: start it, talk to it, stop it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LeaderProcess:
    """A controller stand-in in its own OS process; its stdout lines are kept in order."""

    def __init__(self, endpoint: str, prefix: str, identity: str, ttl: int) -> None:
        self.identity = identity
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.store.workers",
                "leader",
                endpoint,
                prefix,
                identity,
                str(ttl),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())

    def expect(self, word: str, timeout: float = 30.0) -> str:
        """The next stdout line starting with ``word`` (earlier lines are kept in ``output``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.identity}: no {word!r} line in {timeout}s; output so far: "
                    f"{self.output}; stderr: {self.stderr()}"
                ) from None
            self.output.append(line)
            if line.startswith(word):
                return line

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def signal(self, signum: signal.Signals) -> None:
        os.kill(self.process.pid, signum)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.kill()
        self.process.wait(timeout=30)
