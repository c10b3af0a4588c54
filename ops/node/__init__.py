"""The real node: kubelet and containerd on this machine, kind-style, without Docker.

``make cluster`` (``python -m ops.node up`` then ``deploy``) runs a single
Kubernetes node whose pods really go through kubelet -> containerd -> runc,
with Multus as the cluster CNI and nicpool deployed from ``ops/deploy``:

* :mod:`ops.node.layout`: the lab directory, the node's paths and addresses;
* :mod:`ops.node.network`: the node's network namespace (``eth0`` = a veth,
  the node IP, the ``kubernetes`` Service IP on ``lo``);
* :mod:`ops.node.mounts`: the node's mount namespace (a node's paths as
  bind mounts of lab directories; kubelet's sysctls answered there);
* :mod:`ops.node.cgroups`: kubelet's cgroup root in every hierarchy;
* :mod:`ops.node.pki`: certificates and tokens;
* :mod:`ops.node.control`, :mod:`ops.node.runtime`, :mod:`ops.node.kubelet`:
  the command lines and configs of etcd, the control plane, containerd,
  Multus and kubelet;
* :mod:`ops.node.daemons`, :mod:`ops.node.state`: processes that outlive
  the command that started them, remembered by pid and start time;
* :mod:`ops.node.forward`: loopback ports on the machine into the node;
* :mod:`ops.node.node`: the bring-up; :mod:`ops.node.teardown`: ``make
  cluster-down``; :mod:`ops.node.deploy`: nicpool with ``kubectl apply -k``;
* :mod:`ops.node.cluster`: :class:`~ops.node.cluster.NodeCluster`, the API
  the node tests and ``make demo-node`` (:mod:`ops.node.demo`) use;
* :mod:`ops.node.seed`: the reference document's objects with local images.

Rules: nothing of the node listens on the machine's namespace except the
forwarder, on loopback; nothing it mounts is visible on the machine; the
machine's sysctls and links are never written; every process is stopped by
the id recorded when it started, or found by the node's own namespaces and
cgroup. Images are built locally (``ops/tools/build-images.sh``) and
imported with ``ctr``; nothing is pulled.
"""
