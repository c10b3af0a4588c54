"""``kubectl`` as the lab's admin, from this machine (through the forwarded port)."""

from __future__ import annotations

import subprocess

from ops.node.layout import Layout


def kubectl(layout: Layout, *args: str, timeout: float = 120, stdin: str | None = None) -> str:
    """Run kubectl; its stdout, or RuntimeError with its stderr."""
    argv = ["kubectl", f"--kubeconfig={layout.admin_kubeconfig}", *args]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode:
        raise RuntimeError(
            f"kubectl {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}"
        )
    return done.stdout
