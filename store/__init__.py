"""nicpool's authoritative IPAM state in etcd.

``store.core`` is the pure core (address math, bitmaps, the choice of the
next address, MACs, record formats): values in, values out, no I/O.
``store.etcd`` alone talks to etcd; the modules beside it (``subnets``,
``leases``, ``attachments``, ``election``) compose fenced transactions from
the core's decisions.
"""
