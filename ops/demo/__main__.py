"""``python -m ops.demo [--keep]``: run the demo; see the package docstring.

Exit codes: 0 demo ran and cleaned up (with ``--keep``: also when Ctrl-C
ended the wait), 1 a step failed or something was left behind (cleanup still
ran), 2 this machine cannot run it (not root, missing binaries), 130
interrupted before the last step.
SIGTERM is turned into the same path as Ctrl-C, and a second Ctrl-C during
cleanup is ignored, so namespaces and processes are always removed.

The root check comes before anything else is imported, so a user who is
not root is told at once, with nothing but this module and the standard
library loaded.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ops.demo.stack import Stack

NOT_ROOT = "the demo creates network namespaces and must run as root (try: sudo make demo)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.demo", description=__doc__)
    p.add_argument(
        "--keep",
        action="store_true",
        default=os.environ.get("NICPOOL_DEMO_KEEP", "") not in ("", "0"),
        help="leave everything running after the last step until Ctrl-C, to poke at metrics "
        "(NICPOOL_DEMO_KEEP=1, e.g. NICPOOL_DEMO_KEEP=1 make demo)",
    )
    return p


def preflight() -> Path | str:
    """The directory of the Kubernetes binaries, or why this machine cannot run the demo."""
    from ops.lab.cni import REFERENCE_PLUGINS
    from ops.lab.kube import find_assets

    if not os.access(REFERENCE_PLUGINS / "macvlan", os.X_OK):
        return f"no CNI macvlan plugin in {REFERENCE_PLUGINS} (make deps installs it)"
    assets = find_assets()
    if assets is None:
        return "no etcd/kube-apiserver/kube-controller-manager: run make test-binaries"
    return assets


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(stack: Stack, keep: bool) -> None:
    from ops.demo import show, steps

    steps.start_cluster(stack)
    steps.start_nicpool(stack)
    nad, applied = steps.apply_seed(stack)
    steps.wire_seed_pods(stack, nad, applied)
    steps.failover(stack, nad)
    steps.usage_and_metrics(stack)
    if keep:
        show.say("--keep: everything stays up; press Ctrl-C to clean up")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            show.say("Ctrl-C (or SIGTERM): the demo itself had finished")


def cleanup(stack: Stack) -> bool:
    from ops.demo import show, steps

    show.step(7, steps.TOTAL, "cleanup: processes, network namespaces, temporary files")
    started = time.monotonic()
    timings = stack.close()
    show.say("stopped: " + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in timings))
    left = stack.leftovers()
    for item in left:
        show.warn(f"left behind: {item}")
    removed = [f"{len(stack.pids)} processes stopped"]
    if stack.lab is not None:
        removed.append(f"namespaces {stack.lab.tag}-* deleted")
    removed.append(f"{stack.workdir} removed")
    show.say(
        f"cleanup done in {time.monotonic() - started:.1f} s: {', '.join(removed)}; "
        f"{len(left)} left behind"
    )
    return not left


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print(f"make demo: {NOT_ROOT}", file=sys.stderr)
        return 2
    from ops.demo import show
    from ops.demo.pods import DemoError
    from ops.demo.stack import Stack

    assets = preflight()
    if isinstance(assets, str):
        print(f"make demo: {assets}", file=sys.stderr)
        return 2
    # Explicitly, SIGINT too: a shell starting us in the background hands us
    # SIGINT ignored, and Ctrl-C must still clean up.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    stack, status = Stack(assets=assets), 0
    show.say(f"nicpool demo: binaries from {assets}; work directory {stack.workdir}")
    try:
        run(stack, args.keep)
    except DemoError as error:
        show.warn(f"demo failed: {error}")
        _log_tails(stack)
        status = 1
    except KeyboardInterrupt:
        show.warn("interrupted")
        status = 130
    except Exception as error:
        show.warn(f"demo failed unexpectedly: {error!r}")
        _log_tails(stack)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        clean = cleanup(stack)
    show.say(
        f"demo {'finished' if status == 0 else 'stopped'} in {show.elapsed():.1f} s end to end"
    )
    return status if clean else max(status, 1)


def _log_tails(stack: Stack) -> None:
    from ops.demo import show

    for replica in stack.controllers:
        show.warn(f"{replica.identity} log tail:")
        show.block(replica.log_tail(1500))
    if stack.agent is not None:
        show.warn("agent log tail:")
        show.block(stack.agent.log_text()[-1500:])


if __name__ == "__main__":
    sys.exit(main())
