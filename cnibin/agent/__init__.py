"""``nicpool-agent``: the node agent the ``kube-ovn`` plugin asks for leases.

Layers, each its own module: ``protocol`` (pure: parse requests, build
Kube-OVN-shaped replies), ``service`` (the decisions, over a two-method
``LeaseSource``), ``metrics``, ``server`` (HTTP/1.1 on a unix socket, stdlib
only) and ``main`` (flags, etcd, signals).
"""
