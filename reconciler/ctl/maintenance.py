"""The repair kit: ``audit``, ``backup``, ``restore``, ``rebuild``, and ``access setup``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reconciler.ctl import render
from reconciler.ctl.audit import audit as run_audit
from reconciler.ctl.backup import BackupError, check_document, skipped_keys, take_backup
from reconciler.ctl.backup import restore as restore_pairs
from reconciler.ctl.cluster import read_cluster
from reconciler.ctl.context import EXIT_FINDINGS, EXIT_OK, Context, CtlError
from reconciler.ctl.rebuild import RebuildPlan, apply_rebuild, plan_rebuild
from reconciler.ctl.snapshot import read_snapshot
from store.access import setup_access
from store.core.access import grants


def audit(ctx: Context) -> int:
    etcd = read_snapshot(ctx.etcd(), ctx.prefix)
    namespace = ctx.args.namespace
    cluster = None if ctx.args.no_kube else read_cluster(ctx.kube(), namespace=namespace)
    report = run_audit(etcd, cluster)
    if ctx.args.json:
        ctx.print_json(report.to_json())
    else:
        ctx.print(render.audit_text(report))
    return EXIT_OK if report.ok else EXIT_FINDINGS


def backup(ctx: Context) -> int:
    try:
        doc = take_backup(ctx.etcd(), ctx.prefix)
    except BackupError as exc:
        raise CtlError(str(exc), EXIT_FINDINGS) from exc
    text = json.dumps(doc, indent=1) + "\n"
    if ctx.args.output in (None, "-"):
        ctx.out.write(text)
    else:
        Path(ctx.args.output).write_text(text)
        ctx.warn(f"wrote {len(doc['keys'])} keys of {ctx.prefix} to {ctx.args.output}")
    return EXIT_OK


def restore(ctx: Context) -> int:
    source = ctx.args.file
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise CtlError(f"cannot read {source}: {exc}") from exc
    try:
        doc = json.loads(text)
        pairs = check_document(doc, ctx.prefix)
    except ValueError as exc:  # BackupError is one; json.JSONDecodeError another
        raise CtlError(f"{source}: {exc}") from exc
    if skipped := skipped_keys(doc):
        ctx.warn(f"skipped {skipped} election key(s): they belong to the source's live leases")
    try:
        written = restore_pairs(ctx.etcd(), ctx.prefix, pairs)
    except BackupError as exc:
        raise CtlError(str(exc), EXIT_FINDINGS) from exc
    ctx.print(f"restored {written} keys into {ctx.prefix}")
    return EXIT_OK


def rebuild(ctx: Context) -> int:
    cluster = read_cluster(ctx.kube(), namespace=ctx.args.namespace, for_rebuild=True)
    plan = plan_rebuild(cluster)
    doc: dict[str, Any] = _plan_json(plan)
    if plan.conflicts and ctx.args.apply and not ctx.args.skip_conflicts:
        doc["applied"] = False
        doc["refused"] = "conflicting claims; resolve them or pass --skip-conflicts"
        _show_rebuild(ctx, plan, doc)
        return EXIT_FINDINGS
    doc["applied"] = bool(ctx.args.apply)
    if ctx.args.apply:
        outcomes = apply_rebuild(ctx.etcd(), ctx.prefix, plan)
        doc["outcomes"] = [o.to_json() for o in outcomes]
    _show_rebuild(ctx, plan, doc)
    refused = any(o["status"] == "refused" for o in doc.get("outcomes", []))
    return EXIT_FINDINGS if plan.conflicts or refused else EXIT_OK


def _plan_json(plan: RebuildPlan) -> dict[str, Any]:
    refused = plan.conflicting()
    return {
        "subnets": [spec.name for spec in plan.subnets],
        "claims": [
            {
                "nic": str(nic.ref),
                "subnet": nic.subnet,
                "ips": list(nic.fixed_ips),
                "mac": nic.mac,
                "interface": nic.interface,
                "conflict": str(nic.ref) in refused,
            }
            for nic in plan.claims
        ],
        "conflicts": [c.to_json() for c in plan.conflicts],
        "skipped": plan.skipped,
    }


def _show_rebuild(ctx: Context, plan: RebuildPlan, doc: dict[str, Any]) -> None:
    if ctx.args.json:
        ctx.print_json(doc)
        return
    ctx.print(f"subnets from Subnet objects: {', '.join(doc['subnets']) or '-'}")
    rows = [
        [c["nic"], c["subnet"], ",".join(c["ips"]), c["mac"] or "-", _flag(c["conflict"])]
        for c in doc["claims"]
    ]
    ctx.print(render.table(("NIC", "SUBNET", "IPS", "MAC", ""), rows) if rows else "no claims")
    for conflict in plan.conflicts:
        ctx.print(
            f"conflict: {conflict.kind} {conflict.value} in subnet {conflict.subnet} "
            f"claimed by {', '.join(conflict.claimants)}"
        )
    for skipped in plan.skipped:
        ctx.print(f"skipped: {', '.join(f'{k}={v}' for k, v in skipped.items())}")
    for outcome in doc.get("outcomes", []):
        ctx.print(f"{outcome['status']}: {outcome['nic']} {outcome['detail']}")
    if "refused" in doc:
        ctx.print(f"nothing written: {doc['refused']}")
    elif not doc["applied"]:
        ctx.print("dry run: nothing written (pass --apply to write)")


def _flag(conflict: bool) -> str:
    return "CONFLICT" if conflict else ""


def access_setup(ctx: Context) -> int:
    args = ctx.args
    plan = grants(controller=args.controller_user, agent=args.agent_user, admin=args.admin_user)
    for line in setup_access(ctx.etcd(), ctx.prefix, plan):
        ctx.print(line)
    return EXIT_OK
