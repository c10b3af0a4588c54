"""``make demo-node``: the seed's story on the real node, where kubelet runs the CNI path.

What ``make demo`` plays by hand (the runtime's CNI ADD), happens here for
real: kubelet asks containerd for each pod sandbox, containerd runs Multus,
Multus runs the bridge for eth0 and macvlan for the seed's NAD, macvlan runs
``kube-ovn``, which asks the agent nicpool's DaemonSet runs. Steps:

1. the node (``ops.node``), or the one ``make cluster`` left running;
2. nicpool from ``ops/deploy`` (``kubectl apply -k ops/deploy/overlays/lab``);
3. the seed's Subnet, NAD, Pods and ip_pool Deployment (images made local);
4. ``kubectl get pods -o wide``, then ``ip addr`` inside each container next
   to its annotation, and a ping between two pods over macvlan;
5. the leader's pod deleted; a new pod still gets an address;
6. ``nicpoolctl usage``; then the seed's objects are deleted and a node this
   demo started is torn down (``--keep`` leaves it running, like ``make
   cluster``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from ops.demo import show
from ops.demo.pods import attachments
from ops.lab.controllers import wait_for
from ops.node import assets, deploy, seed, teardown
from ops.node.cluster import CONTROLLER_SELECTOR, NICPOOL, NodeCluster
from ops.node.layout import Layout, default_root
from ops.node.node import up
from ops.node.runtime import BUSYBOX_IMAGE

TOTAL = 6


def bring_up() -> tuple[NodeCluster, bool]:
    """The running node (not ours to stop) or a new one (ours), with nicpool deployed."""
    show.step(
        1, TOTAL, "a real node: kubelet + containerd + runc, Multus, in namespaces of its own"
    )
    attached = NodeCluster.attach()
    if attached is not None:
        show.say(f"using the node make cluster started ({attached.layout.root})")
        node, ours = attached, False
    else:
        inputs = assets.find()
        if isinstance(inputs, str):
            raise SystemExit(f"make demo-node: {inputs}")
        layout = Layout(default_root())
        state = up(layout, inputs)
        node, ours = NodeCluster(layout, state), True
        t = state.timings
        show.say(
            f"node Ready {t['node ready']:.1f} s after start (apiserver ready "
            f"{t['apiserver ready']:.1f} s, images imported {t['images imported']:.1f} s)"
        )
    show.step(2, TOTAL, "nicpool from ops/deploy: kubectl apply -k ops/deploy/overlays/lab")
    if ours:
        show.say(f"nicpool rolled out in {deploy.install(node.layout):.1f} s")
    show.say(f"$ export KUBECONFIG={node.layout.admin_kubeconfig}")
    show.say("$ kubectl -n nicpool-system get pods -o wide")
    show.block(node.kubectl("-n", NICPOOL, "get", "pods", "-o", "wide"))
    return node, ours


def apply_seed(node: NodeCluster) -> list[str]:
    show.step(
        3, TOTAL, "the seed's Subnet, NAD (master: eth0, the node's), Pods, ip_pool Deployment"
    )
    docs = seed.documents(*seed.seed_files())
    show.block(node.kubectl("apply", "-f", "-", stdin=seed.as_yaml(docs)))
    show.say(f"images: every container runs {BUSYBOX_IMAGE} (built here, no registry)")
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"]

    def all_pods() -> list[str] | None:
        pods = node.pods("default", seed.DEPLOYMENT_SELECTOR)
        return names + [p["metadata"]["name"] for p in pods] if len(pods) == 2 else None

    every = wait_for("the seed's pods", all_pods, timeout=60)
    started = time.monotonic()
    node.wait_running(every, timeout=180)
    show.say(f"{len(every)} pods Running {time.monotonic() - started:.1f} s after they all existed")
    return every


def show_pods(node: NodeCluster, names: list[str]) -> None:
    show.step(4, TOTAL, "what kubelet made: pods, addresses inside the containers, a ping")
    show.say("$ kubectl get pods -o wide")
    show.block(node.kubectl("get", "pods", "-o", "wide"))
    rows = []
    for name in names:
        pod = node.pod(name)
        for nad, ifname in attachments(pod["metadata"]["annotations"], "default"):
            provider = f"{nad.split('/')[1]}.{nad.split('/')[0]}"
            leased = pod["metadata"]["annotations"][f"{provider}.kubernetes.io/ip_address"]
            inside = node.addresses(name, ifname)
            check = "ok" if [a.split("/")[0] for a in inside] == [leased] else "MISMATCH"
            rows.append([name, ifname, ", ".join(inside), leased, check])
            show.say(f"$ kubectl exec {name} -- ip -4 addr show dev {ifname}")
            show.block(node.exec(name, "ip", "-4", "addr", "show", "dev", ifname))
    show.block(show.table(["POD", "IF", "INSIDE THE CONTAINER", "ANNOTATED", "CHECK"], rows))
    target = node.addresses("static-ip", "net1")[0].split("/")[0]
    show.say(f"$ kubectl exec samplepod -- ping -c 3 {target}   (static-ip, over macvlan)")
    out = node.exec("samplepod", "ping", "-c", "3", "-W", "2", target)
    show.block(out)
    if any(r[-1] != "ok" for r in rows) or not re.search(r"3 packets received", out):
        raise RuntimeError("an address differs from its annotation, or the ping failed")


def failover(node: NodeCluster) -> None:
    show.step(5, TOTAL, "delete the leader's pod; a standby takes over; a new pod gets an address")
    leader = wait_for("a leader", node.leader, timeout=60)
    show.say(f"$ kubectl -n nicpool-system delete pod {leader} --grace-period=0 --force")
    node.kubectl("-n", NICPOOL, "delete", "pod", leader, "--grace-period=0", "--force")
    killed = time.monotonic()
    docs = seed.documents("04-pod-samplepod.yaml")
    docs[0]["metadata"]["name"] = "after-failover"
    node.kubectl("apply", "-f", "-", stdin=seed.as_yaml(docs))
    node.wait_running(["after-failover"], timeout=120)
    address = node.addresses("after-failover", "net1")
    successor = wait_for("a new leader", node.leader, timeout=60)
    show.say(
        f"new leader {successor}; pod after-failover Running with {', '.join(address)} "
        f"{time.monotonic() - killed:.1f} s after the delete"
    )
    show.block(node.kubectl("-n", NICPOOL, "get", "pods", "-l", CONTROLLER_SELECTOR))


def usage_and_cleanup(node: NodeCluster, ours: bool, keep: bool) -> list[str]:
    show.step(6, TOTAL, "nicpoolctl usage, then cleanup")
    done = node.nicpoolctl("usage")
    show.block(done.stdout or done.stderr)
    if keep:
        show.say(f"--keep: the node stays up; export KUBECONFIG={node.layout.admin_kubeconfig}")
        return []
    docs = seed.documents(*seed.seed_files())
    extra = seed.documents("04-pod-samplepod.yaml")
    extra[0]["metadata"]["name"] = "after-failover"
    workloads = [d for d in docs + extra if d["kind"] != "Subnet"]
    node.kubectl("delete", "--wait=true", "-f", "-", stdin=seed.as_yaml(workloads), timeout=180)
    wait_for("the seed's Subnet deleted", lambda: _delete_subnet(node), timeout=120, every=1)
    show.say("the seed's objects deleted; their leases released")
    if not ours:
        return []
    started = time.monotonic()
    left = teardown.down(node.layout)
    show.say(f"make cluster-down equivalent: {time.monotonic() - started:.1f} s, left: {left}")
    return left


def _delete_subnet(node: NodeCluster) -> bool:
    try:
        node.kubectl("delete", "subnet", "macvlan", "--ignore-not-found", "--wait=true", timeout=30)
    except Exception:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.node.demo", description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the node and the seed up")
    args = parser.parse_args(argv)
    node: NodeCluster | None = None
    ours = False
    status = 0
    try:
        node, ours = bring_up()
        names = apply_seed(node)
        show_pods(node, names)
        failover(node)
    except (RuntimeError, AssertionError, KeyboardInterrupt) as error:
        show.warn(f"demo-node failed: {error}")
        status = 1
    finally:
        if node is not None:
            try:
                left = usage_and_cleanup(node, ours, args.keep and status == 0)
            except (RuntimeError, AssertionError) as error:
                show.warn(f"cleanup: {error}")
                left = teardown.down(node.layout) if ours else [str(error)]
            status = status or (1 if left else 0)
    show.say(f"demo-node {'finished' if status == 0 else 'failed'} in {show.elapsed():.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
