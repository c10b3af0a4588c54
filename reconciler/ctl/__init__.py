"""``nicpoolctl``: the operator's view into nicpool's etcd state, and its repair kit.

Reads go straight to etcd (through ``store``) and, where a command compares
the store with the cluster, to the kube-apiserver (through
``reconciler.kube``). The comparisons themselves are pure functions over
snapshots (:mod:`.snapshot` for etcd, :mod:`.cluster` for the apiserver),
so the audit's rules are testable without servers.

Writes (``release``, ``restore``, ``rebuild --apply``) are admin writes
with ``UNFENCED``: they do not hold the leader's fencing token. They stay
safe beside a running leader because every one of them is a transaction
that compares the revisions it read (a bitmap chunk, an attachment key, an
absent key), so a write that raced the leader fails instead of clobbering
it. ``restore`` and ``rebuild`` still belong to a stopped control plane:
scale the controller Deployment to 0 first, so nothing allocates from a
half-restored store.
"""
