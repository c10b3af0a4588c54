"""The demo's story, one function per numbered step (see ``issues show 5``).

Each step prints what it starts or checks, and where to look. A step that
cannot reach its state raises :class:`~ops.demo.pods.DemoError`; the caller
tears the stack down either way.
"""

from __future__ import annotations

import copy
import ipaddress
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import CoreV1Api

from ops.demo import show
from ops.demo.pods import DemoError, Nic, wait_allocated, wait_pods
from ops.demo.stack import ELECTION_TTL, PREFIX, Stack
from ops.demo.wire import ReadBack, attach, nad_config
from ops.lab.controllers import ControllerProcess
from ops.lab.kube_objects import load_documents
from ops.lab.netns import MASTER

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SUBNET_FILE, NAD_FILE = "03-subnet-macvlan.yaml", "02-nad-macvlan.yaml"
POD_FILES = (
    "04-pod-samplepod.yaml",
    "05-pod-static-ip.yaml",
    "07-pod-samplepod-route.yaml",
    "08-pod-samplepod-macvlan.yaml",
)
DEPLOYMENT_FILE, DEPLOYMENT_SELECTOR, REPLICAS = (
    "06-deployment-static-workload.yaml",
    "app=static-workload",
    2,
)
EXTRA_PODS = 3
TOTAL = 7


def start_cluster(stack: Stack) -> None:
    show.step(1, TOTAL, "etcd + kube-apiserver + kube-controller-manager, CRDs")
    cp = stack.start_control_plane()
    show.say(f"etcd {stack.etcd_endpoint}; kube-apiserver {cp.server}")
    show.say(f"kubeconfig {cp.kubeconfig}; CRDs installed from ops/deploy/crds/")


def start_nicpool(stack: Stack) -> ControllerProcess:
    show.step(2, TOTAL, f"3 nicpool-controller replicas (election TTL {ELECTION_TTL} s), 1 agent")
    show.say(f"nicpool state: etcd {stack.etcd_endpoint} under {PREFIX} (the control plane's etcd)")
    for replica in stack.start_controllers():
        url = f"http://127.0.0.1:{replica.metrics_port}/metrics"
        show.say(f"{replica.identity}: pid {replica.pid}, metrics {url}")
    agent = stack.start_agent()
    assert agent.process is not None
    show.say(f"nicpool-agent: pid {agent.process.pid}, socket {agent.socket}")
    show.say(f"nicpool-agent metrics http://127.0.0.1:{agent.metrics_port}/metrics")
    lab = stack.start_lab()
    assert lab.host is not None
    show.say(
        f"node netns {lab.host.name}, macvlan master {MASTER} (a veth); "
        f"kube-ovn plugin installed in {stack.cni_path[0]}"
    )
    leader = wait_leader(stack.controllers)
    show.say(f"leader: {leader.identity}")
    return leader


def wait_leader(replicas: list[ControllerProcess], timeout: float = 60) -> ControllerProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for replica in replicas:
            if replica.alive() and replica.is_leader():
                return replica
        time.sleep(0.1)
    raise DemoError(f"no controller became leader within {timeout:.0f} s")


def seed_documents() -> list[tuple[str, dict[str, Any]]]:
    """(file, object) for the Subnet, NAD, Pods and Deployment, in apply order."""
    files = (SUBNET_FILE, NAD_FILE, *POD_FILES, DEPLOYMENT_FILE)
    found = [(name, doc) for name in files for doc in load_documents(EXAMPLES / name)]
    for name, doc in found:
        if doc["kind"] == "NetworkAttachmentDefinition":
            config = doc["spec"]["config"]
            if config.count('"master": "eth0"') != 1:
                raise DemoError(f'{name}: expected one "master": "eth0" in spec.config')
            doc["spec"]["config"] = config.replace('"master": "eth0"', f'"master": "{MASTER}"')
    return found


def apply_seed(stack: Stack) -> tuple[dict[str, Any], float]:
    """Apply the seed's objects; returns the NAD as applied and when the pods were."""
    show.step(3, TOTAL, "the seed's Subnet, NAD, Pods and ip_pool Deployment (ops/examples/)")
    assert stack.cp is not None
    nad: dict[str, Any] = {}
    for name, doc in seed_documents():
        applied = stack.cp.apply_yaml(yaml.safe_dump(doc))
        kind, meta = doc["kind"], doc["metadata"]
        where = f"{meta['namespace']}/" if "namespace" in meta else ""
        show.say(f"applied {name}: {kind} {where}{meta['name']}")
        if kind == "NetworkAttachmentDefinition":
            nad = applied[0]
            show.say(
                f'  master "eth0" -> "{MASTER}" (rewritten in memory: the lab\'s veth, '
                "not this machine's NIC)"
            )
    return nad, time.monotonic()


def wire_seed_pods(stack: Stack, nad: dict[str, Any], applied: float) -> list[ReadBack]:
    show.step(4, TOTAL, 'wait for allocated: "true", then CNI ADD through macvlan for every NIC')
    assert stack.cp is not None
    core = CoreV1Api(stack.cp.api_client())
    names = {doc["metadata"]["name"] for _, doc in seed_documents() if doc["kind"] == "Pod"}
    pods = wait_pods(core, "default", names, DEPLOYMENT_SELECTOR, REPLICAS)
    show.say(f"{len(pods)} pods exist ({REPLICAS} created by the Deployment's ReplicaSet)")
    return wire(stack, core, pods, nad, applied)


def wire(
    stack: Stack, core: Any, pods: list[Any], nad: dict[str, Any], created: float
) -> list[ReadBack]:
    """Wait for the leases, ADD every NIC, print what the namespaces hold."""
    allocated = wait_allocated(core, pods)
    took = time.monotonic() - created
    show.say(f'{len(allocated)} NICs allocated: "true" {took:.1f} s after the pods were created')
    rows = [_attach(stack, nic, nad) for nic in allocated]
    assert stack.lab is not None
    show.say(f"CNI ADD done for {len(rows)} NICs; read back from {stack.lab.tag}-pod-<pod>:")
    print_table(rows)
    return rows


def _attach(stack: Stack, nic: Nic, nad: dict[str, Any]) -> ReadBack:
    assert stack.lab is not None
    meta = nad["metadata"]
    if nic.nad != f"{meta['namespace']}/{meta['name']}":
        raise DemoError(f"{nic.pod} names NAD {nic.nad}; the demo applies only the seed's")
    return attach(stack, nic, nad_config(nad), stack.lab.pod(nic.pod))


def print_table(rows: list[ReadBack]) -> None:
    cells, own_mac = [], []
    for row in rows:
        check = _check(row.addresses, row.nic.lease("ip_address"), row.nic.lease("cidr"))
        shown = ", ".join(row.addresses) or "-"
        cells.append(
            [row.nic.pod, row.nic.ifname, shown, row.mac, row.gateway, row.route_text(), check]
        )
        lease_mac = row.nic.lease("mac_address")
        if lease_mac and lease_mac.lower() != row.mac.lower():
            own_mac.append(f"{row.nic.pod} {lease_mac}")
    headers = ["POD", "IF", "IP (netns)", "MAC (netns)", "DEFAULT GW", "ROUTES (netns)", "LEASE"]
    show.block(show.table(headers, cells))
    show.block(
        "DEFAULT GW: next hop of a default route through this NIC ('-': none, a secondary NIC)"
    )
    if own_mac:
        show.block(
            "MAC: macvlan chose its own on these NICs; an IPAM plugin cannot set it, and Multus\n"
            'passes a MAC (CNI_ARGS MAC=) only from the networks JSON "mac" key. Lease MACs:\n'
            "  " + ", ".join(own_mac)
        )
    if any(not c[-1].startswith("ok") for c in cells):
        raise DemoError("an address in a pod's netns differs from its lease (table above)")


def _check(addresses: list[str], leased: str, cidr: str) -> str:
    """ "ok" when the netns holds exactly the leased address, inside the lease's subnet."""
    if [a.split("/")[0] for a in addresses] != [leased]:
        return f"MISMATCH (lease {leased})"
    if ipaddress.ip_interface(addresses[0]).ip not in ipaddress.ip_network(cidr, strict=False):
        return f"OUTSIDE {cidr}"
    return f"ok (in {cidr})"


def failover(stack: Stack, nad: dict[str, Any]) -> ControllerProcess:
    show.step(5, TOTAL, "kill -9 the leader; a standby takes over; new pods still get addresses")
    leader = wait_leader(stack.controllers)
    show.say(f"leader is {leader.identity} (pid {leader.pid}): sending SIGKILL")
    killed = time.monotonic()
    leader.kill()
    survivors = [r for r in stack.controllers if r is not leader]
    successor = wait_leader(survivors)
    took = time.monotonic() - killed
    show.say(
        f"new leader: {successor.identity} (was {leader.identity}), took over after {took:.1f} s"
    )
    assert stack.cp is not None
    core: Any = CoreV1Api(stack.cp.api_client())  # accepts plain dicts as bodies
    template = next(d for _, d in seed_documents() if d["metadata"]["name"] == "samplepod")
    pods, created = [], time.monotonic()
    for n in range(1, EXTRA_PODS + 1):
        body = copy.deepcopy(template)
        body["metadata"]["name"] = f"after-failover-{n}"
        pods.append(core.create_namespaced_pod("default", body))
        show.say(f"created pod default/after-failover-{n} (the seed's samplepod, renamed)")
    wire(stack, core, pods, nad, created)
    show.say(f"{EXTRA_PODS} new pods allocated {time.monotonic() - killed:.1f} s after the kill")
    return successor


def usage_and_metrics(stack: Stack) -> None:
    show.step(6, TOTAL, "pool usage (nicpoolctl usage) and where the metrics are")
    assert stack.cp is not None
    argv = [sys.executable, "-m", "reconciler.ctl.main", "--etcd-endpoints", stack.etcd_endpoint]
    argv += ["--etcd-prefix", PREFIX, "--kubeconfig", str(stack.cp.kubeconfig), "usage"]
    show.say(
        "$ nicpoolctl --etcd-endpoints " + f"{stack.etcd_endpoint} --etcd-prefix {PREFIX} usage"
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    show.block(done.stdout or done.stderr)
    if done.returncode != 0:
        raise DemoError(f"nicpoolctl usage exited {done.returncode}: {done.stderr.strip()}")
    for replica in stack.controllers:
        role = "leader" if replica.alive() and replica.is_leader() else "standby"
        role = role if replica.alive() else "killed"
        show.say(f"{replica.identity} ({role}): http://127.0.0.1:{replica.metrics_port}/metrics")
        if role == "leader":
            show.block(_sample(replica.http("/metrics")[1], LEADER_SAMPLE))
    assert stack.agent is not None
    show.say(f"agent: http://127.0.0.1:{stack.agent.metrics_port}/metrics")
    show.block(_sample(stack.agent.metrics(), AGENT_SAMPLE))
    show.say("these endpoints stop at cleanup; NICPOOL_DEMO_KEEP=1 make demo leaves them up")


LEADER_SAMPLE = (
    "nicpool_leader ",
    "nicpool_leader_changes_total ",
    "nicpool_subnet_addresses{",
    "nicpool_allocation_seconds_count",
)
AGENT_SAMPLE = ("nicpool_cni_request_seconds_count",)


def _sample(text: str, prefixes: tuple[str, ...]) -> str:
    """A few non-zero series of a /metrics page, so the reader knows what to look for."""
    lines = [
        line
        for line in text.splitlines()
        if line.startswith(prefixes) and not line.endswith((" 0.0", " 0"))
    ]
    return "\n".join(lines) or "(no samples yet)"
