"""Peers benchmark: nicpool beside Whereabouts, host-local and the apiserver's own floor.

``python -m tests.bench.peers`` (``make bench-peers``) starts one real
control plane (etcd + kube-apiserver on loopback), nicpool's own etcd (fsync
on), ``nicpool-agent`` and the installed ``kube-ovn`` plugin, and runs every
system on the same workloads in one run, so every ratio is between numbers
taken minutes apart on the same machine:

* a workload is N pods x M NICs with C callers (defaults N = 100, 1000;
  M = 1, 2; C = 1, 8, 32). Pods are created through the apiserver by 16
  threads; C caller threads, the kubelets, exec the system's IPAM plugin for
  each pod's NICs in order; then every NIC gets a DEL and the pods are
  deleted (:mod:`.workload`). ``seconds`` is first creation -> last ADD
  returned. Each system's processes run only during its own workloads;
* **nicpool**, **host-local** (:mod:`.systems`) and **Whereabouts**
  (:mod:`.whereabouts`) are the systems; for each (N, M) the **floor**
  (:mod:`.floor`) runs first: the same pod creations and one annotation
  patch per pod by a controller process that does no IPAM. nicpool's
  seconds over the floor's are ``ratio_to_floor``;
* around each workload, CPU seconds per process and apiserver requests per
  verb and resource (:mod:`.meters`) say where each system spends its time;
  ``--profile`` samples nicpool's controller with py-spy on one extra,
  uncounted run (:mod:`.profile`);
* the scale phase (:mod:`.scale`) fills nicpool to 10,000 and then 100,000
  leases through the same apiserver and measures restart, index load,
  ``nicpoolctl`` and storage; a failure there is recorded, not hidden.

Results: ``tests/bench/results/peers.json`` (:mod:`.summary` says what each
field means), raw series in ``results/peers/samples.json`` and the figures
``results/peers/*.png`` (:mod:`.plots`); ``python -m tests.bench.table``
prints the side-by-side table the README shows. Progress goes to stderr
every two seconds.
"""
