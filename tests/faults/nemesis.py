"""The faults, each a function that breaks something, waits, heals it and returns its window.

A fault's window runs from the first break to the moment the heal is
complete (the process restarted, the member healthy, the proxy cleared),
so the checker's allocation bound counts only calm time. Durations are
drawn from the nemesis' own RNG (seeded from the run's seed, apart from
the workload's), so a seed replays the same faults in the same order.

Processes the nemesis kills are announced to the supervisor first, so their
exits are not anomalies; every other exit is.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ops.lab.controllers import wait_for
from store.errors import NicpoolError
from tests.faults.cnirunner import CniRunner
from tests.faults.history import FaultWindow
from tests.faults.supervisor import Supervisor
from tests.faults.system import Node, Replica, System
from tests.faults.workload import Workload


@dataclass
class Context:
    system: System
    supervisor: Supervisor
    workload: Workload
    cni: CniRunner
    rng: random.Random
    stop: threading.Event
    scale: float = 1.0
    """Multiplies every fault's duration (chaos runs may hold faults longer)."""

    def hold(self, low: float, high: float) -> None:
        """Keep the fault on for a random while (the fault's duration, not a wait for a state)."""
        self.stop.wait(self.rng.uniform(low, high) * self.scale)

    def leader(self) -> Replica:
        """The leading replica, or (none leading within 30 s) any replica."""
        try:
            return wait_for("a leader", self.system.leader, 30)
        except AssertionError:
            return self.rng.choice(self.system.replicas)

    def kill(self, replica: Replica) -> None:
        self.supervisor.expect(replica.process.popen)
        replica.process.kill(signal.SIGKILL)

    @property
    def ttl(self) -> float:
        return float(self.system.knobs.election_ttl)


Fault = Callable[[Context], str]
"""Breaks, holds, heals; returns what it broke (for the report)."""


def leader_kill(ctx: Context) -> str:
    replica = ctx.leader()
    ctx.kill(replica)
    ctx.hold(1, 5)
    ctx.system.restart_replica(replica)
    return replica.identity


def leader_pause(ctx: Context) -> str:
    replica = ctx.leader()
    assert replica.process.popen is not None
    replica.process.popen.send_signal(signal.SIGSTOP)
    ctx.hold(ctx.ttl + 1, ctx.ttl + 4)  # past the lease: it must wake deposed
    replica.process.popen.send_signal(signal.SIGCONT)
    return replica.identity


def _etcd_down(ctx: Context, indices: list[int]) -> str:
    cluster = ctx.system.etcd
    assert cluster is not None
    for index in indices:
        member = cluster.members[index]
        ctx.supervisor.expect(member.process.popen if member.process else None)
        cluster.kill(index)
    ctx.hold(2, 8)
    for index in indices:
        cluster.start_member(index, wait=False)
    cluster.wait_healthy(120, only=indices)
    return ",".join(cluster.members[i].name for i in indices)


def etcd_member_kill(ctx: Context) -> str:
    assert ctx.system.etcd is not None
    return _etcd_down(ctx, [ctx.rng.randrange(len(ctx.system.etcd.members))])


def etcd_leader_kill(ctx: Context) -> str:
    cluster = ctx.system.etcd
    assert cluster is not None

    def leader() -> list[int] | None:
        index = cluster.leader()  # 0 is a valid index: wrap it so it is truthy
        return None if index is None else [index]

    return _etcd_down(ctx, wait_for("an etcd leader", leader, 60))


def quorum_loss(ctx: Context) -> str:
    assert ctx.system.etcd is not None
    return _etcd_down(ctx, ctx.rng.sample(range(len(ctx.system.etcd.members)), 2))


def apiserver_restart(ctx: Context) -> str:
    plane = ctx.system.plane
    assert plane is not None
    hard = ctx.rng.random() < 0.5
    ctx.supervisor.expect(plane.components().get("kube-apiserver"))
    plane.restart("kube-apiserver", kill=hard)
    return "SIGKILL" if hard else "SIGTERM"


def apiserver_resets(ctx: Context) -> str:
    assert ctx.system.proxies is not None
    names = [r.api_proxy for r in ctx.system.replicas]
    until = time.monotonic() + ctx.rng.uniform(6, 12) * ctx.scale
    count = 0
    while time.monotonic() < until and not ctx.stop.is_set():
        count += ctx.system.proxies.reset(names)
        ctx.stop.wait(ctx.rng.uniform(0.2, 1.0))
    return f"{count} connections reset"


def _blackhole(ctx: Context, names: list[str], low: float, high: float) -> None:
    assert ctx.system.proxies is not None
    ctx.system.proxies.set(names, blackhole=True)
    ctx.hold(low, high)
    ctx.system.proxies.heal(names)


def controller_blackhole(ctx: Context) -> str:
    replica = ctx.leader() if ctx.rng.random() < 0.5 else ctx.rng.choice(ctx.system.replicas)
    _blackhole(ctx, replica.proxies, 6, 14)
    return f"{replica.identity} (apiserver and etcd)"


def partition_etcd(ctx: Context) -> str:
    replica = ctx.leader()
    _blackhole(ctx, replica.etcd_proxies, ctx.ttl + 2, ctx.ttl + 6)
    return replica.identity


def partition_apiserver(ctx: Context) -> str:
    replica = ctx.leader()
    _blackhole(ctx, [replica.api_proxy], 6, 12)
    return replica.identity


def agent_restart_during_add(ctx: Context) -> str:
    """A CNI ADD for a pod not created yet waits on the agent; the agent is restarted."""
    node = ctx.rng.choice(ctx.system.nodes)
    with ctx.workload.lock:
        ctx.workload.count += 1
        name = f"waiter-{ctx.workload.count}"
    sandbox = ctx.cni.attach(ctx.workload.sandbox(name, None, ["net-a"], node=node))
    try:
        wait_for(f"an ADD waiting on {node.name}'s agent", lambda: _waiting(node), 60)
        waiting = ""
    except AssertionError:  # a slow plugin start: restart the agent all the same
        waiting = ", no ADD was waiting yet"
    ctx.supervisor.expect(node.agent.process)
    if ctx.rng.random() < 0.5 and node.agent.process is not None:
        node.agent.process.kill()
        node.agent.process.wait()
    ctx.system.restart_agent(node)
    try:
        with ctx.workload.lock:
            ctx.workload.create("", ["net-a"], name=name, sandbox=sandbox)
    except NicpoolError as exc:  # the apiserver is down (another fault): no pod, no ADD
        ctx.cni.detach(sandbox)
        waiting += f", pod not created ({exc.reason})"
    return f"{node.name} ({name}{waiting})"


def _waiting(node: Node) -> bool:
    """True when a client is connected to the node agent's socket (a request in flight).

    The server end of an accepted unix connection lives in the *client's*
    network namespace, the node's, so that is the table to read.
    """
    assert node.lab.host is not None
    table = subprocess.run(
        ["ip", "netns", "exec", node.lab.host.name, "cat", "/proc/net/unix"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    wanted = str(node.agent.socket)
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == wanted and fields[5] == "03":
            return True
    return False


def etcd_slow(ctx: Context) -> str:
    """Every nicpool-etcd connection slowed: latency and a bandwidth cap."""
    assert ctx.system.proxies is not None
    names = [n for r in ctx.system.replicas for n in r.etcd_proxies]
    names += [n for node in ctx.system.nodes for n in node.etcd_proxies]
    latency = ctx.rng.uniform(0.05, 0.4)
    ctx.system.proxies.set(names, latency=latency, bandwidth=64 * 1024)
    ctx.hold(5, 12)
    ctx.system.proxies.heal(names)
    return f"{latency * 1000:.0f} ms, 64 KiB/s"


FAULTS: dict[str, Fault] = {
    "leader-kill": leader_kill,
    "leader-pause": leader_pause,
    "etcd-member-kill": etcd_member_kill,
    "etcd-leader-kill": etcd_leader_kill,
    "quorum-loss": quorum_loss,
    "apiserver-restart": apiserver_restart,
    "apiserver-resets": apiserver_resets,
    "controller-blackhole": controller_blackhole,
    "agent-restart-during-add": agent_restart_during_add,
    "partition-etcd": partition_etcd,
    "partition-apiserver": partition_apiserver,
    "etcd-slow": etcd_slow,
}
RESOURCES: dict[str, str] = {
    "leader-kill": "replicas",
    "leader-pause": "replicas",
    "etcd-member-kill": "etcd",
    "etcd-leader-kill": "etcd",
    "quorum-loss": "etcd",
    "apiserver-restart": "apiserver",
    "apiserver-resets": "apiserver",
    "controller-blackhole": "replicas",
    "agent-restart-during-add": "agents",
    "partition-etcd": "replicas",
    "partition-apiserver": "replicas",
    "etcd-slow": "etcd",
}
"""What each fault breaks; two faults at once never break the same thing."""


def run_fault(ctx: Context, name: str) -> FaultWindow:
    start = time.time()
    detail = FAULTS[name](ctx)
    return FaultWindow(name, start, time.time(), detail)
