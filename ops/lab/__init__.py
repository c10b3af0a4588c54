"""The lab: real nicpool components and their real peers, started on this machine.

Everything the demo (``ops/demo``), the benchmarks (``tests/bench``) and every
test tier start from lives here, free of pytest, so each of them imports one
public API instead of reaching into another's helpers:

* :mod:`ops.lab.etcd`: an etcd server on a loopback port (``EtcdServer``);
* :mod:`ops.lab.etcdcluster`: a 3-member etcd cluster with client, server and
  peer TLS and, on request, nicpool's auth roles (``EtcdCluster``);
* :mod:`ops.lab.tls`: a throwaway CA and its certificates, made with openssl;
* :mod:`ops.lab.faultproxy`, :mod:`ops.lab.faultproxyd`: TCP proxies that
  reset, black-hole, delay or throttle connections on command, in a process
  of their own (``ProxyDaemon``);
* :mod:`ops.lab.kube`: a real control plane, etcd + kube-apiserver
  (+ kube-controller-manager), with certificates and kubeconfigs
  (``ControlPlane``, ``find_assets``);
* :mod:`ops.lab.kube_objects`: applying YAML documents and waiting for CRDs;
* :mod:`ops.lab.controllers`: ``nicpool-controller`` processes
  (``ControllerProcess``) and ``wait_for``, the one polling helper;
* :mod:`ops.lab.cluster`: reads and writes over the Kubernetes client that
  tests and the demo share (``Cluster``);
* :mod:`ops.lab.cni`: the node agent process, the installed ``kube-ovn``
  plugin, the CNI reference plugins and Multus (``AgentProcess``,
  ``exec_plugin``, ``MultusHarness``);
* :mod:`ops.lab.netns`: network namespaces standing in for a node and its
  pods (``Lab``, ``Netns``);
* :mod:`ops.lab.binaries`, :mod:`ops.lab.ports`, :mod:`ops.lab.processes`:
  finding binaries, free loopback ports, stopping what was started.

Rules every module keeps: servers listen on loopback or inside network
namespaces the lab creates; whatever is started is stopped (SIGTERM, then
SIGKILL); nothing here imports from ``tests``.
"""
