"""Long-running node processes that outlive the command that started them.

``make cluster`` returns while the node keeps running, and ``make
cluster-down`` (another process) stops it, so a daemon is remembered by a
:class:`Pid` (process id plus the kernel's start time, which a reused id
never matches) in ``state.json``, not by a ``Popen`` object. A daemon runs in
its own session with its output in ``logs/<name>.log``; ``nsenter`` puts it
into the node's network (and, for containerd and kubelet, mount) namespace
and then execs it, so the recorded id is the daemon's own.

Stopping is by recorded id only: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pid:
    pid: int
    start: int
    """Field 22 of /proc/<pid>/stat: clock ticks after boot when it started."""

    @classmethod
    def of(cls, pid: int) -> Pid:
        return cls(pid, start_time(pid) or 0)

    def alive(self) -> bool:
        """Running (not a zombie) and still the process that was recorded."""
        return self.start != 0 and start_time(self.pid) == self.start

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, raw: list[int]) -> Pid:
        return cls(int(raw[0]), int(raw[1]))


def start_time(pid: int) -> int | None:
    """The process's start time, or None when it is gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        _reap(pid)
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    """Collect a dead child of ours (it is a zombie until someone waits)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def spawn(
    name: str,
    argv: list[str],
    *,
    log_dir: Path,
    netns: Path | None = None,
    mount_ns: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Pid:
    """Start ``argv`` detached, inside the given namespaces; its output goes to the log."""
    prefix: list[str] = []
    if netns is not None or mount_ns is not None:
        prefix = ["nsenter"]
        if netns is not None:
            prefix.append(f"--net={netns}")
        if mount_ns is not None:
            prefix.append(f"--mount={mount_ns}")
        prefix.append("--")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            [*prefix, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
    # The id is final once nsenter has exec'd; a start time read before that
    # would be nsenter's own, which is the same process, so it stays valid.
    return Pid.of(process.pid)


def stop(pid: Pid, *, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` s; True if it had been running."""
    if not pid.alive():
        return False
    _signal(pid, signal.SIGTERM)
    if not wait_gone([pid], grace):
        _signal(pid, signal.SIGKILL)
        wait_gone([pid], 10.0)
    return True


def kill_all(pids: list[Pid], *, timeout: float = 10.0) -> None:
    """SIGKILL every one still running and wait until they are gone."""
    for pid in pids:
        if pid.alive():
            _signal(pid, signal.SIGKILL)
    if not wait_gone(pids, timeout):
        left = [p.pid for p in pids if p.alive()]
        raise RuntimeError(f"processes {left} survived SIGKILL for {timeout} s")


def wait_gone(pids: list[Pid], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: Pid, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid.pid, sig)
