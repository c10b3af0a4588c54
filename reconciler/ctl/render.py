"""Plain-text tables for people; every command also has ``--json`` for programs.

No colours and no terminal tricks: output goes to logs, tickets and pipes
as often as to a terminal.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from reconciler.core.ippools import IPPoolView
from reconciler.core.poolusage import PoolFamilyUsage
from reconciler.ctl.audit import KINDS, AuditReport
from reconciler.ctl.reservations import PoolState
from store.core.identity import IPAMCLAIM, AttachmentRef
from store.core.owners import OwnerRecord
from store.core.records import Lease
from store.core.usage import FamilyUsage
from store.core.vips import is_vip_ref

BAR_WIDTH = 20


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def bar(used: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#####...............]  25.0%``; a used address always shows at least one ``#``."""
    fraction = used / total if total else 0.0
    filled = min(width, round(fraction * width))
    if used and not filled:
        filled = 1
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%"


def usage_rows(name: str, cidrs: dict[int, str], usage: Sequence[FamilyUsage]) -> list[list[Any]]:
    return [
        [
            name,
            f"IPv{u.family}",
            cidrs.get(u.family, ""),
            u.total,
            u.used,
            u.available,
            u.excluded,
            bar(u.used, u.total),
        ]
        for u in usage
    ]


POOL_HEADERS = (
    "IPPOOL",
    "SUBNET",
    "FAMILY",
    "TOTAL",
    "USED",
    "AVAILABLE",
    "NAMESPACES",
    "STATE",
    "USAGE",
)


def pool_rows(
    name: str, view: IPPoolView | None, state: PoolState, usage: Sequence[PoolFamilyUsage]
) -> list[list[Any]]:
    subnet = "-" if view is None else view.subnet
    namespaces = "-" if view is None or not view.namespaces else ",".join(view.namespaces)
    if not usage:
        return [[name, subnet, "-", "-", "-", "-", namespaces, state.text, "-"]]
    return [
        [name, subnet, f"IPv{u.family}", u.total, u.used, u.available, namespaces,
         state.text, bar(u.used, u.total)]
        for u in usage
    ]  # fmt: skip


def pool_json(
    name: str, view: IPPoolView | None, state: PoolState, usage: Sequence[PoolFamilyUsage]
) -> dict[str, Any]:
    return {
        "ippool": name,
        "subnet": None if view is None else view.subnet,
        "namespaces": [] if view is None else list(view.namespaces),
        "state": state.text,
        "problem": None if state.error is None else str(state.error),
        "families": [
            {"family": u.family, "total": u.total, "used": u.used, "available": u.available,
             "using": u.using_range, "free": u.available_range}
            for u in usage
        ],
    }  # fmt: skip


USAGE_HEADERS = ("SUBNET", "FAMILY", "CIDR", "TOTAL", "USED", "AVAILABLE", "EXCLUDED", "USAGE")
LEASE_HEADERS = ("SUBNET", "IP", "OWNER", "PROVIDER", "INTERFACE", "MAC", "STATE", "CREATED")


def owner_text(lease: Lease) -> str:
    """``ns/pod`` for a pod's own lease; ``Vip <name>`` for a Vip's reservation
    (``store.core.vips``); ``ipamclaim ns/name`` or ``vm ns/name`` else."""
    owner = lease.owner
    if isinstance(owner, AttachmentRef):
        return f"Vip {owner.pod.name}" if is_vip_ref(owner) else str(owner.pod)
    return f"{'ipamclaim' if owner.kind == IPAMCLAIM else 'vm'} {owner.namespace}/{owner.name}"


def lease_json(lease: Lease, record: OwnerRecord | None = None) -> dict[str, Any]:
    """One lease; an owned one also names its owner's holder pods (``record``)."""
    owner = lease.owner
    if isinstance(owner, AttachmentRef):
        kind, namespace, name, pod = "Pod", owner.pod.namespace, owner.pod.name, owner.pod.name
    else:
        kind, namespace, name, pod = owner.kind, owner.namespace, owner.name, None
    return {
        "subnet": lease.subnet,
        "ip": lease.ip,
        "namespace": namespace,
        "pod": pod,
        "owner": {"kind": kind, "namespace": namespace, "name": name, "uid": lease.uid},
        "holders": [] if record is None else [str(h.ref.pod) for h in record.holders],
        "provider": lease.nic_name,
        "uid": lease.uid,
        "interface": lease.interface,
        "mac": lease.mac,
        "state": lease.state,
        "workload": None
        if lease.workload is None
        else {"kind": lease.workload.kind, "name": lease.workload.name},
        "created": lease.created,
        "fence": lease.fence,
    }


def lease_row(lease: Lease) -> list[str]:
    return [
        lease.subnet,
        lease.ip,
        owner_text(lease),
        lease.nic_name,
        lease.interface,
        lease.mac,
        lease.state,
        timestamp(lease.created),
    ]


def timestamp(seconds: float) -> str:
    if not seconds:
        return "-"
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def audit_text(report: AuditReport) -> str:
    lines: list[str] = []
    for kind in KINDS:
        found = report.findings[kind]
        if not found:
            continue
        lines.append(f"{kind.replace('_', ' ')}: {len(found)}")
        lines += [f"  - {_describe(item)}" for item in found]
    if not report.kube:
        lines.append("(pods and IP objects not checked: --no-kube)")
    total = sum(len(v) for v in report.findings.values())
    lines.append("audit: OK, no findings" if report.ok else f"audit: {total} findings")
    return "\n".join(lines)


def _describe(item: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in item.items()
    )
