"""``python -m ops.node up|down|status``: the real node, by hand (``make cluster`` uses it)."""

from __future__ import annotations

import argparse
import sys

from ops.node import assets, deploy, teardown
from ops.node.layout import Layout, default_root
from ops.node.node import NodeError, up
from ops.node.state import State


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.node", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "deploy"))
    args = parser.parse_args(argv)
    layout = Layout(default_root())
    if args.command == "down":
        left = teardown.down(layout)
        for item in left:
            print(f"left behind: {item}", file=sys.stderr)
        return 1 if left else 0
    if args.command == "status":
        state = State.load(layout.state_file)
        print("down" if state is None else f"up: {state.timings}, ports {state.ports}")
        return 0 if state else 1
    if args.command == "deploy":
        seconds = deploy.install(layout)
        print(f"nicpool deployed from {deploy.OVERLAY} in {seconds:.1f} s")
        return 0
    inputs = assets.find()
    if isinstance(inputs, str):
        print(f"make cluster: {inputs}", file=sys.stderr)
        return 2
    try:
        state = up(layout, inputs)
    except NodeError as error:
        print(f"make cluster: {error}", file=sys.stderr)
        return 1
    print(f"node Ready in {state.timings['node ready']:.1f} s; timings {state.timings}")
    print(f"export KUBECONFIG={layout.admin_kubeconfig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
