"""One fault run, start to verdict: what ``make test-faults`` and ``make chaos`` both execute.

1. Servers (proxies, etcd cluster, control plane); the run's namespace,
   NADs, Subnets and workloads; the recorders; then nicpool (three
   replicas, two node agents), the supervisor and the workload.
2. The nemesis runs its schedule while the workload runs.
3. The endgame (:mod:`.endgame`): settle, handover probes, quiet, final state.
4. The checker judges the history; the report names the seed, the faults,
   what was checked and every anomaly.

Everything started is stopped in ``finally``, also when a step fails.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.kube.config import kube_client
from tests.faults.checker import check
from tests.faults.cnirunner import CniRunner
from tests.faults.endgame import final_state, handover_probes, readiness_probes, settle
from tests.faults.history import History
from tests.faults.nemesis import Context
from tests.faults.recorders import EtcdRecorder, PodRecorder
from tests.faults.report import report
from tests.faults.schedule import ALONE, Nemesis
from tests.faults.supervisor import Supervisor
from tests.faults.system import PREFIX, Knobs, System
from tests.faults.verdict import Settings, Verdict
from tests.faults.workload import Workload, prepare


@dataclass(frozen=True)
class Plan:
    seed: int
    mode: str = "alone"
    """``alone`` (each fault once) or ``mixed`` (random faults for ``duration`` s)."""
    faults: tuple[str, ...] = ALONE
    duration: float = 300.0
    calm: float = 6.0
    """Seconds of calm before each fault (alone), at most between faults (mixed)."""
    bound: float = 90.0
    interval: float = 0.8
    """Seconds between two workload operations."""
    sample: float = 0.3
    """Share of bare pods that also get real NICs through CNI."""
    scale: float = 1.0
    knobs: Knobs = field(default_factory=Knobs)
    artifacts: Path | None = None
    """Keep every log, the history (JSON) and the report here."""


@dataclass
class Outcome:
    plan: Plan
    verdict: Verdict
    history: History
    report: str


def execute(plan: Plan, assets: Path, *, out: Callable[[str], None] = print) -> Outcome:
    out(f"nicpool fault run: seed {plan.seed}, mode {plan.mode} (replay with SEED={plan.seed})")
    system = System(assets, plan.knobs, keep=plan.artifacts)
    history = History(started=time.time())
    stop = threading.Event()
    halt: list[Callable[[], None]] = []
    try:
        system.start_servers()
        assert system.plane is not None and system.etcd is not None
        kube = kube_client(str(system.plane.kubeconfig))
        namespace = f"faults-{plan.seed % 100000}"
        prepare(kube, namespace)
        etcd_recorder = EtcdRecorder(system.etcd, PREFIX, history).start()
        pods = PodRecorder(kube, namespace, history).start()
        halt += [etcd_recorder.halt, pods.halt]
        system.start_nicpool()
        supervisor = Supervisor(system, history).start()
        halt.insert(0, supervisor.halt)
        cni = CniRunner(system, history)
        halt.insert(0, cni.halt)
        workload = Workload(
            kube, namespace, history, random.Random(f"{plan.seed}-workload"),
            cni=cni, nodes=system.nodes, interval=plan.interval, sample=plan.sample,
        )  # fmt: skip
        workload.start()
        halt.insert(0, workload.halt)
        ctx = Context(system, supervisor, workload, cni, random.Random(f"{plan.seed}-nemesis"),
                      stop, plan.scale)  # fmt: skip
        nemesis = Nemesis(ctx, calm=plan.calm, out=out)
        out("faults:")
        if plan.mode == "mixed":
            history.faults += nemesis.mixed(plan.duration)
        else:
            history.faults += nemesis.alone(plan.faults)
        history.probes += nemesis.failures
        workload.halt()
        _endgame(
            plan, system=system, workload=workload, cni=cni, pods=pods, history=history, out=out
        )
        history.final = final_state(system, kube, namespace)
    finally:
        stop.set()
        for action in halt:
            action()
        history.ended = time.time()
        system.stop()
    verdict = check(history, Settings(bound=plan.bound))
    text = report(plan.seed, plan.mode, history, verdict, workload.operations)
    out(text)
    if plan.artifacts is not None:
        plan.artifacts.mkdir(parents=True, exist_ok=True)
        (plan.artifacts / "report.txt").write_text(text + "\n")
        with (plan.artifacts / "history.json").open("w") as file:
            json.dump(dataclasses.asdict(history), file, indent=1, default=str)
        out(f"logs, history and report kept in {plan.artifacts}")
    return Outcome(plan, verdict, history, text)


def _endgame(
    plan: Plan,
    *,
    system: System,
    workload: Workload,
    cni: CniRunner,
    pods: PodRecorder,
    history: History,
    out: Callable[[str], None],
) -> None:
    out("endgame: settle, readiness and handover probes, quiet period, final state")
    settle(pods, history, plan.bound)
    cni.wait_idle(plan.bound)
    readiness_probes(system, history, timeout=plan.bound)
    handover_probes(system, workload, history, timeout=plan.knobs.election_ttl * 3 + 60)
    settle(pods, history, plan.bound)
    # A duration, not a condition: orphans must be gone once GC's grace (and a
    # second sighting) has passed, and waiting "until they are gone" would hide them.
    knobs = plan.knobs
    time.sleep(knobs.gc_grace * 2 + knobs.gc_interval * 2)
