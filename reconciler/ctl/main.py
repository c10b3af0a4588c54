"""``nicpoolctl``: command-line parsing, dispatch, and exit codes.

Exit codes: 0 fine; 1 findings (audit), conflicts (rebuild), a refusal
(release of a live pod's address, restore into a used prefix) or a lease
not found; 2 bad flags or bad input; 3 etcd or the apiserver unreachable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from reconciler.ctl import commands, maintenance, pools
from reconciler.ctl.context import EXIT_UNAVAILABLE, EXIT_USAGE, Context, CtlError
from store.config import add_etcd_arguments, add_flag
from store.core.access import ADMIN, AGENT, CONTROLLER
from store.errors import NicpoolError, PermanentError, TemporaryError

Command = Callable[[Context], int]


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    add_etcd_arguments(parser)
    add_flag(
        parser,
        "--kubeconfig",
        env="KUBECONFIG",
        default=None,
        help="kubeconfig; without one, in-cluster, else ~/.kube/config",
    )


def _connection_parent() -> argparse.ArgumentParser:
    """The same flags, accepted after the command too; given there, they win."""
    parent = argparse.ArgumentParser(add_help=False)
    _connection_arguments(parent)
    for action in parent._actions:
        action.default = argparse.SUPPRESS
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nicpoolctl",
        description="Inspect, audit, back up and repair nicpool's IPAM state.",
        epilog="Exit codes: 0 ok, 1 findings/refused/not found, 2 bad input, 3 unreachable.",
    )
    _connection_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser = _with_parent(sub.add_parser, _connection_parent())  # type: ignore[method-assign]
    _read_commands(sub)
    _repair_commands(sub)
    return parser


def _with_parent(
    add: Callable[..., argparse.ArgumentParser], parent: argparse.ArgumentParser
) -> Callable[..., argparse.ArgumentParser]:
    def add_parser(name: str, **kwargs: object) -> argparse.ArgumentParser:
        return add(name, parents=[parent], **kwargs)

    return add_parser


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _read_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("usage", help="addresses per subnet and family, with a usage bar")
    p.add_argument("--subnet", help="only this subnet")
    _json_flag(p)
    p.set_defaults(run=commands.usage)

    p = sub.add_parser("pools", help="addresses per IPPool and family, with its state")
    p.add_argument("--subnet", help="only this subnet's IPPools")
    _json_flag(p)
    p.set_defaults(run=pools.pools)

    p = sub.add_parser("leases", help="list leases")
    p.add_argument("--subnet", help="only this subnet")
    p.add_argument("--pod", help="only this pod (namespace/name)")
    p.add_argument("--provider", help="only this provider (<nad>.<ns>[.ovn])")
    _json_flag(p)
    p.set_defaults(run=commands.leases)

    lease = sub.add_parser("lease", help="one lease")
    lease_sub = lease.add_subparsers(dest="lease_command", required=True, metavar="ACTION")
    p = lease_sub.add_parser("show", help="who holds an address (searches every subnet)")
    p.add_argument("ip")
    _json_flag(p)
    p.set_defaults(run=commands.lease_show)

    p = sub.add_parser("release", help="free an address's NIC (refused while its pod exists)")
    p.add_argument("ip")
    p.add_argument("--force", action="store_true", help="do not check that the pod is gone")
    p.add_argument("--no-kube", action="store_true", help="leave the IP object alone")
    p.set_defaults(run=commands.release)


def _repair_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="leases vs bitmaps vs attachments vs pods vs IP objects")
    p.add_argument("--no-kube", action="store_true", help="audit etcd alone")
    p.add_argument("-n", "--namespace", help="compare only this namespace's pods and IP objects")
    _json_flag(p)
    p.set_defaults(run=maintenance.audit)

    p = sub.add_parser("backup", help="everything under the prefix as one JSON document")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(run=maintenance.backup)

    p = sub.add_parser("restore", help="load a backup into an EMPTY prefix")
    p.add_argument("file", help="backup file, or - for stdin")
    p.set_defaults(run=maintenance.restore)

    access = sub.add_parser("access", help="etcd auth: a user and role per component")
    access_sub = access.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    p = access_sub.add_parser(
        "setup",
        help="create users/roles for the controller (read-write), the agent (read-only) and "
        "nicpoolctl (read-write) on the prefix, then enable auth; run as etcd's root",
    )
    p.add_argument("--controller-user", default=CONTROLLER, help="the controller's cert CN")
    p.add_argument("--agent-user", default=AGENT, help="the agents' cert CN")
    p.add_argument("--admin-user", default=ADMIN, help="nicpoolctl's cert CN")
    p.set_defaults(run=maintenance.access_setup)

    p = sub.add_parser("rebuild", help="recreate etcd state from pod annotations (dry run)")
    p.add_argument("--apply", action="store_true", help="write (default: only show the plan)")
    p.add_argument("-n", "--namespace", help="only this namespace's pods")
    p.add_argument(
        "--skip-conflicts",
        action="store_true",
        help="with --apply: write the claims that do not conflict",
    )
    _json_flag(p)
    p.set_defaults(run=maintenance.rebuild)


_HINTS = {
    "release": " (release --force skips the pod check)",
    "audit": " (audit --no-kube checks etcd alone)",
}


def run(argv: Sequence[str] | None = None, ctx: Context | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = ctx or Context(args)
    ctx.args = args
    command: Command = args.run
    try:
        return command(ctx)
    except CtlError as exc:
        ctx.warn(str(exc))
        return exc.code
    except TemporaryError as exc:
        hint = _HINTS.get(args.command, "")
        ctx.warn(f"unavailable: {exc}{hint}")
        return EXIT_UNAVAILABLE
    except (PermanentError, ValueError) as exc:
        ctx.warn(str(exc))
        return EXIT_USAGE
    except NicpoolError as exc:
        ctx.warn(str(exc))
        return EXIT_UNAVAILABLE
    finally:
        ctx.close()


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="nicpoolctl: %(message)s")
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
