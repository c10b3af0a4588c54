"""``nicpoolctl pools``: each IPPool's addresses, as its status and metrics count them.

The IPPool objects come from the apiserver (their spec and the verdict the
controller would give: :func:`reconciler.ctl.reservations.pool_states`),
the leased addresses from the Subnet's bitmaps in etcd (one read per
Subnet), and the counting is the controller's own
(:func:`reconciler.core.poolusage.pool_usage`), so the command and the
IPPool's status always agree.
"""

from __future__ import annotations

from reconciler.core.poolusage import pool_usage
from reconciler.ctl import render
from reconciler.ctl.cluster import read_cluster
from reconciler.ctl.context import EXIT_OK, Context
from reconciler.ctl.reservations import pool_states
from store.core.identity import SubnetName
from store.core.usage import FamilyOccupancy
from store.errors import UnknownSubnet
from store.leases import Ipam


def pools(ctx: Context) -> int:
    """Per IPPool and family: total, used, available, namespaces and state."""
    cluster = read_cluster(ctx.kube(), namespace=None)
    ipam = Ipam(ctx.etcd(), ctx.prefix)
    occupancy: dict[str, list[FamilyOccupancy] | None] = {}
    rows, found = [], []
    for name, (view, state) in sorted(pool_states(cluster).items()):
        if ctx.args.subnet and (view is None or view.subnet != ctx.args.subnet):
            continue
        usage = []
        if view is not None:
            if view.subnet not in occupancy:
                try:
                    occupancy[view.subnet] = ipam.occupancy(SubnetName(view.subnet))
                except UnknownSubnet:
                    occupancy[view.subnet] = None
            held = occupancy[view.subnet]
            usage = pool_usage(view, held) if held is not None else []
        rows += render.pool_rows(name, view, state, usage)
        found.append(render.pool_json(name, view, state, usage))
    if ctx.args.json:
        ctx.print_json({"ippools": found})
    elif not rows:
        ctx.print("no IPPools")
    else:
        ctx.print(render.table(render.POOL_HEADERS, rows))
    return EXIT_OK
