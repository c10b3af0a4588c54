"""The node side of nicpool: the ``kube-ovn`` CNI plugin and the node agent.

``cnibin.plugin`` is a single standard-library-only file (it is copied into
the CNI bin directory and starts without site-packages); ``cnibin.agent`` is
the long-running ``nicpool-agent`` that answers it from etcd through
``store``.
"""
