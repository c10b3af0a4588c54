"""The everyday commands: ``usage``, ``leases``, ``lease show`` and ``release``.

A lease held for an owner (an IPAMClaim, a VM's NIC) is shown with that
owner and its holder pods; ``release`` of one frees the owner's addresses
for every holder, so it is refused while the claim or VM exists.
"""

from __future__ import annotations

from reconciler.core.owners import ObjectState, object_state, owner_alive
from reconciler.ctl import render
from reconciler.ctl.context import EXIT_FINDINGS, EXIT_OK, Context, CtlError
from reconciler.ipobjects import ip_name, owner_ip_name
from reconciler.kube.resources import (
    IPAMCLAIMS,
    IPS,
    PODS,
    VIRTUALMACHINEINSTANCES,
    VIRTUALMACHINES,
    Resource,
)
from store.core.addressing import parse_ip
from store.core.identity import AttachmentRef, OwnerRef, PodRef, PodUID, SubnetName
from store.core.keys import Keys
from store.core.owners import OwnerRecord
from store.core.records import Lease, decode_lease
from store.core.vips import is_vip_ref
from store.errors import InvalidAddress, NicpoolError, TemporaryError
from store.leases import UNFENCED, Ipam
from store.operator import request_release
from store.subnets import Subnets


def usage(ctx: Context) -> int:
    specs = Subnets(ctx.etcd(), ctx.prefix).all()
    if ctx.args.subnet:
        specs = [s for s in specs if s.name == ctx.args.subnet]
        if not specs:
            raise CtlError(
                f"subnet {ctx.args.subnet} is not registered in the store", EXIT_FINDINGS
            )
    ipam = Ipam(ctx.etcd(), ctx.prefix)
    rows = []
    found = []
    for spec in specs:
        cidrs: dict[int, str] = {lay.family: lay.cidr for lay in spec.layouts}
        per_family = ipam.usage(spec.name)
        rows += render.usage_rows(spec.name, cidrs, per_family)
        found += [
            {"subnet": spec.name, "family": u.family, "cidr": cidrs[u.family], "total": u.total,
             "used": u.used, "available": u.available, "excluded": u.excluded}
            for u in per_family
        ]  # fmt: skip
    if ctx.args.json:
        ctx.print_json({"subnets": found})
    elif not rows:
        ctx.print(f"no subnets registered under {ctx.prefix}")
    else:
        ctx.print(render.table(render.USAGE_HEADERS, rows))
    return EXIT_OK


def _pod_filter(text: str | None) -> PodRef | None:
    if not text:
        return None
    namespace, _, name = text.rpartition("/")
    if not name or "/" in namespace:
        raise CtlError(f"--pod {text!r}: expected namespace/name")
    return PodRef(namespace or "default", name)


def leases(ctx: Context) -> int:
    pod = _pod_filter(ctx.args.pod)
    names = [SubnetName(ctx.args.subnet)] if ctx.args.subnet else None
    if names is None:
        names = [spec.name for spec in Subnets(ctx.etcd(), ctx.prefix).all()]
    ipam = Ipam(ctx.etcd(), ctx.prefix)
    records = {record.owner: record for record in ipam.owners()}
    found = [
        lease
        for name in names
        for lease in ipam.leases(name)
        if (pod is None or pod in _pods_of(lease, records))
        and (not ctx.args.provider or ctx.args.provider in _providers_of(lease))
    ]
    found.sort(key=lambda lease: (lease.subnet, _ip_order(lease.ip)))
    if ctx.args.json:
        docs = [render.lease_json(lease, _record_of(lease, records)) for lease in found]
        ctx.print_json({"leases": docs})
    elif not found:
        ctx.print("no leases match")
    else:
        ctx.print(render.table(render.LEASE_HEADERS, [render.lease_row(x) for x in found]))
    return EXIT_OK


def _record_of(lease: Lease, records: dict[OwnerRef, OwnerRecord]) -> OwnerRecord | None:
    return records.get(lease.owner) if isinstance(lease.owner, OwnerRef) else None


def _pods_of(lease: Lease, records: dict[OwnerRef, OwnerRecord]) -> list[PodRef]:
    """The pods holding a lease: its pod, or its owner's holder pods."""
    if isinstance(lease.owner, AttachmentRef):
        return [lease.owner.pod]
    record = records.get(lease.owner)
    return [] if record is None else [holder.ref.pod for holder in record.holders]


def _providers_of(lease: Lease) -> tuple[str, ...]:
    owner = lease.owner
    if isinstance(owner, AttachmentRef):
        return owner.provider, owner.qualified
    return (lease.provider,)


def _ip_order(ip: str) -> tuple[int, int]:
    address = parse_ip(ip)
    return address.version, int(address)


def find_lease(ctx: Context, address: str) -> Lease:
    """The lease of ``address`` in whichever subnet holds it; CtlError(1) when none does."""
    try:
        ip = str(parse_ip(address))
    except InvalidAddress as exc:
        raise CtlError(str(exc)) from exc
    keys = Keys(ctx.prefix)
    containing = []
    for spec in Subnets(ctx.etcd(), ctx.prefix).all():
        kv, _ = ctx.etcd().get(keys.lease(spec.name, ip))
        if kv is not None:
            return decode_lease(kv.value)
        layout = spec.layout(parse_ip(ip).version)
        if layout is not None and parse_ip(ip) in layout.network:
            containing.append(f"{spec.name} ({layout.cidr})")
    where = f"; it lies in subnet {', '.join(containing)}" if containing else " and no subnet"
    raise CtlError(f"{ip} is not leased{where}", EXIT_FINDINGS)


def lease_show(ctx: Context) -> int:
    lease = find_lease(ctx, ctx.args.ip)
    ipam = Ipam(ctx.etcd(), ctx.prefix)
    record, attachment = None, None
    if isinstance(lease.owner, AttachmentRef):
        attachment = ipam.get(lease.owner)
        nic_ips = None if attachment is None else attachment.ip_csv()
    else:
        record = ipam.owner(lease.owner)
        nic_ips = None if record is None else record.ip_csv()
    if ctx.args.json:
        doc = render.lease_json(lease, record)
        doc["attachment_ips"] = [] if nic_ips is None else nic_ips.split(",")
        doc["release_requested"] = attachment is not None and attachment.release_requested
        ctx.print_json(doc)
        return EXIT_OK
    holders = "-" if record is None else ", ".join(str(h.ref.pod) for h in record.holders)
    rows = [
        ("ip", lease.ip),
        ("subnet", lease.subnet),
        ("owner", f"{render.owner_text(lease)} (uid {lease.uid or '-'})"),
        *([("holders", holders or "none")] if isinstance(lease.owner, OwnerRef) else []),
        ("provider", lease.nic_name),
        ("interface", lease.interface),
        ("mac", lease.mac),
        ("state", lease.state),
        ("workload", "-" if not lease.workload else f"{lease.workload.kind}/{lease.workload.name}"),
        ("created", render.timestamp(lease.created)),
        ("fence", str(lease.fence)),
        ("nic addresses", "MISSING ATTACHMENT" if nic_ips is None else nic_ips),
        ("release", "requested: freed once the pod is gone"
         if attachment is not None and attachment.release_requested else "-"),
    ]  # fmt: skip
    ctx.print("\n".join(f"{k + ':':<15}{v}" for k, v in rows))
    return EXIT_OK


def release(ctx: Context) -> int:
    """Free a NIC whose pod is gone; mark one whose pod may live (``--force``).

    ``--force`` never frees an address under a pod that may still use it: when
    the pod exists (or the apiserver cannot be asked) the NIC is marked and
    the controller frees it once the pod is gone. ``--force --no-kube`` frees
    at once: disaster recovery, with the controllers scaled down. An owner's
    addresses (a claim's, a VM's) follow the same rule for its holder pods.
    """
    lease = find_lease(ctx, ctx.args.ip)
    owner = lease.owner
    if isinstance(owner, OwnerRef):
        return _release_owner(ctx, lease, owner)
    if is_vip_ref(owner):
        raise CtlError(
            f"refusing to release {lease.ip}: it is reserved by Vip {owner.pod.name}; "
            "delete the Vip (the controller frees it once no pod uses it)",
            EXIT_FINDINGS,
        )
    pod = owner.pod
    if not (ctx.args.force and ctx.args.no_kube):
        live = _pod_uid(ctx, pod, ask=not ctx.args.force)
        if live is not None and not ctx.args.force:
            raise CtlError(
                f"refusing to release {lease.ip}: pod {pod} still exists (uid {live}); "
                "delete the pod first (the controller then releases it), or pass --force "
                "(the controller then releases it once the pod is gone)",
                EXIT_FINDINGS,
            )
        if live is not None:  # alive, or nobody could say: the controller decides later
            return _mark(ctx, lease, owner)
    released = Ipam(ctx.etcd(), ctx.prefix).release(owner, fence=UNFENCED, uid=PodUID(lease.uid))
    if released is None:
        raise CtlError(f"{lease.ip}: the lease changed while releasing; look again", EXIT_FINDINGS)
    ctx.print(
        f"released {released.ip_csv()} (MAC {released.mac}) of {released.ref} "
        f"in subnet {released.subnet}"
    )
    if not ctx.args.no_kube:
        _delete_ip_object(ctx, ip_name(owner))
    return EXIT_OK


_UNKNOWN = "unknown (the apiserver could not be asked)"


def _pod_uid(ctx: Context, pod: PodRef, *, ask: bool) -> str | None:
    """The live pod's uid, None when it is gone, ``_UNKNOWN`` when ``--force`` could
    not ask (without ``--force`` an unreachable apiserver is an error, exit 3)."""
    try:
        found = ctx.kube().get(PODS, pod.namespace, pod.name)
    except (TemporaryError, CtlError, OSError):
        if ask:
            raise
        return _UNKNOWN
    return None if found is None else str((found.get("metadata") or {}).get("uid"))


def _mark(ctx: Context, lease: Lease, ref: AttachmentRef) -> int:
    marked = request_release(ctx.etcd(), ctx.prefix, ref, uid=PodUID(lease.uid))
    if marked is None:
        raise CtlError(f"{lease.ip}: the lease changed while marking it; look again", EXIT_FINDINGS)
    ctx.print(
        f"marked {marked.ip_csv()} of {marked.ref} for release: pod {marked.ref.pod} may "
        "still use it, so the controller frees it once the pod is gone (whatever "
        "StatefulSet retention would keep)"
    )
    return EXIT_OK


def _release_owner(ctx: Context, lease: Lease, owner: OwnerRef) -> int:
    """Free an owner's addresses for every holder. Refused while the owner lives
    (unless ``--force``) and, like a pod's, while a holder pod may still use them
    (unless ``--force --no-kube``): the controller frees them once both have ended."""
    ipam = Ipam(ctx.etcd(), ctx.prefix)
    if not (ctx.args.force and ctx.args.no_kube):
        if not ctx.args.force and _owner_alive(ctx, owner, lease.uid):
            raise CtlError(
                f"refusing to release {lease.ip}: {owner} still exists; delete it first "
                "(the controller then releases its addresses), or pass --force",
                EXIT_FINDINGS,
            )
        record = ipam.owner(owner)
        holders = [] if record is None else record.holders
        running = [h for h in holders if _pod_uid(ctx, h.ref.pod, ask=True) == h.uid]
        if running:
            raise CtlError(
                f"refusing to release {lease.ip}: pod {running[0].ref.pod} still holds it; "
                "delete the pod first (the controller then releases it once the owner is "
                "gone too), or pass --force --no-kube with the controllers scaled down",
                EXIT_FINDINGS,
            )
    released = ipam.release_owner(owner, fence=UNFENCED, uid=lease.uid)
    if released is None:
        raise CtlError(f"{lease.ip}: the lease changed while releasing; look again", EXIT_FINDINGS)
    holders_text = ", ".join(str(h.ref.pod) for h in released.holders) or "no pod"
    ctx.print(
        f"released {released.ip_csv()} (MAC {released.mac}) of {owner} "
        f"in subnet {released.subnet}; held by {holders_text}"
    )
    if not ctx.args.no_kube:
        _delete_ip_object(ctx, owner_ip_name(owner, released.provider))
    return EXIT_OK


def _owner_alive(ctx: Context, owner: OwnerRef, uid: str) -> bool:
    """Asks the apiserver (a missing KubeVirt CRD reads as no object, like a 404)."""

    def state(resource: Resource) -> ObjectState | None:
        return object_state(ctx.kube().get(resource, owner.namespace, owner.name))

    return owner_alive(
        owner,
        uid,
        claim=state(IPAMCLAIMS),
        vm=state(VIRTUALMACHINES),
        vmi=state(VIRTUALMACHINEINSTANCES),
    )


def _delete_ip_object(ctx: Context, name: str) -> None:
    try:
        if ctx.kube().delete(IPS, None, name):
            ctx.print(f"deleted IP object {name}")
    except (NicpoolError, CtlError) as exc:
        ctx.warn(f"IP object {name} not deleted ({exc}); the controller or audit will find it")
