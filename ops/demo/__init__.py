"""``make demo``: nicpool's main job on an embedded default, on one machine.

Everything the tests use runs for real, side by side: a kube-apiserver and
kube-controller-manager over their own etcd (:mod:`ops.lab.kube`),
three ``nicpool-controller`` replicas electing a leader, one
``nicpool-agent``, and the CNI reference ``macvlan`` plugin calling the
installed ``kube-ovn`` IPAM plugin inside network namespaces
(:mod:`ops.lab.netns`, :mod:`ops.lab.cni`). The seed's YAML
from ``ops/examples/`` is applied as written, with one field changed in
memory: the NAD's ``master`` names the lab's veth, since the machine's
``eth0`` must never be touched.

nicpool's state lives under ``/nicpool/v1/`` in the control plane's own etcd
rather than in a second etcd: one process fewer to start and to clean up,
and the prefixes cannot collide (the apiserver writes under ``/registry``).
A production cluster gives nicpool an etcd of its own; the flags are the same.

Modules: :mod:`.stack` starts and stops the processes and namespaces,
:mod:`.pods` reads pods and their NICs from the apiserver, :mod:`.wire` runs
the CNI path for one NIC and reads the result back from the pod's netns,
:mod:`.show` prints progress and tables, :mod:`.steps` is the story in
order, :mod:`.__main__` handles flags, root, signals and the exit code.
"""
