"""``python -m tests.bench.peers`` (``make bench-peers``): see :mod:`tests.bench.peers`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ops.lab.cni import AgentProcess, install_plugin
from ops.lab.etcd import EtcdServer
from ops.lab.kube import ControlPlane, find_assets
from reconciler.kube.client import KubeClient
from reconciler.kube.config import load_endpoint
from store.config import EtcdSettings
from store.etcd import EtcdClient
from tests.bench import table
from tests.bench.peers import plots, summary, workload
from tests.bench.peers.floor import Floor
from tests.bench.peers.meters import Meter
from tests.bench.peers.profile import Recorder
from tests.bench.peers.scale import Scale
from tests.bench.peers.systems import HostLocal, Nicpool, NicpoolStore
from tests.bench.peers.whereabouts import LEADER_ELECTION_MS, Whereabouts, whereabouts_dir
from tests.bench.peers.workload import System, Workload

RESULTS = Path(__file__).resolve().parents[1] / "results"
SYSTEMS = ("nicpool", "host-local", "whereabouts")


def progress(message: str) -> None:
    print(f"[bench-peers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    from tests.bench import peers

    parser = argparse.ArgumentParser(prog="python -m tests.bench.peers", description=peers.__doc__)
    parser.add_argument("--pods", type=ints, default=[100, 1000])
    parser.add_argument("--nics", type=ints, default=[1, 2])
    parser.add_argument("--callers", type=ints, default=[1, 8, 32])
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="any of " + ",".join(SYSTEMS))
    parser.add_argument("--scale", type=ints, default=[10_000, 100_000], help="leases; '' skips")
    parser.add_argument("--skip-peers", action="store_true", help="only the scale phase")
    parser.add_argument("--profile", action="store_true", help="py-spy the controller (1000x2)")
    parser.add_argument("--output", type=Path, default=RESULTS / "peers.json")
    return parser.parse_args(argv)


class Bench:
    """Everything one run starts, and the order it stops it in."""

    def __init__(self, args: argparse.Namespace) -> None:
        assets = find_assets(build=False)
        if assets is None:
            raise SystemExit("no kube-apiserver: run bash ops/tools/build-test-binaries.sh")
        self.args = args
        self.assets = assets
        self.workdir = Path(tempfile.mkdtemp(prefix="nicpool-bench-peers-"))
        self.stack: list[Any] = []
        self.samples: list[dict[str, Any]] = []
        self.prefix = f"/nicpool-bench-peers-{uuid.uuid4().hex[:6]}/v1/"

    def start(self) -> None:
        progress(f"starting kube-apiserver and two etcds ({self.assets})")
        self.nicpool_etcd = EtcdServer(binary=self.assets / "etcd", fsync=True)
        self.nicpool_etcd.start()
        self.stack.append(self.nicpool_etcd)
        self.plane = ControlPlane(assets=self.assets, controller_manager=False)
        self.plane.start()
        self.stack.append(self.plane)
        self.plane.install_crds()
        self.kube = KubeClient(load_endpoint(str(self.plane.kubeconfig)), pool_size=64)
        settings = EtcdSettings(endpoints=(self.nicpool_etcd.endpoint,), prefix=self.prefix)
        self.etcd = EtcdClient(settings)
        self.store = NicpoolStore(
            self.plane.kubeconfig, self.etcd, self.nicpool_etcd.endpoint, self.prefix
        )
        self.agent = AgentProcess(self.nicpool_etcd.endpoint, self.prefix)
        self.agent.start()
        self.stack.append(self.agent)

    def stop(self) -> None:
        for thing in reversed(self.stack):
            try:
                thing.stop()
            except Exception as exc:  # keep stopping the rest
                progress(f"stopping {type(thing).__name__}: {exc}")
        self.nicpool_etcd.destroy()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def meter(self, system: System) -> Meter:
        pids = dict(zip(("apiserver_etcd", "kube_apiserver"), self.plane.pids(), strict=False))
        pids["nicpool_etcd"] = self.nicpool_etcd.process.pid if self.nicpool_etcd.process else 0
        pids["nicpool_agent"] = self.agent.process.pid if self.agent.process else 0
        if isinstance(system, Nicpool) and system.controller is not None:
            pids["nicpool_controller"] = system.controller.pid
        if isinstance(system, Floor) and system.process is not None:
            pids["floor_controller"] = system.process.pid
        plane = self.plane
        return Meter(pids, plane.server, plane.admin_token, plane.ca_file)

    def systems(self, only: str | None = None) -> dict[str, System]:
        wanted = [only] if only else self.args.systems.split(",")
        found: dict[str, System] = {}
        if "nicpool" in wanted:
            plugin = install_plugin(self.workdir / "bin")
            found["nicpool"] = Nicpool(self.kube, store=self.store, agent=self.agent, plugin=plugin)
        if "host-local" in wanted:
            found["host-local"] = HostLocal(self.kube, self.workdir)
        if "whereabouts" in wanted:
            directory = whereabouts_dir(build=True)
            if directory is None:
                raise SystemExit("Whereabouts is not built: bash ops/tools/build-whereabouts.sh")
            found["whereabouts"] = Whereabouts(
                self.plane, self.kube, directory, self.workdir / "whereabouts"
            )
        return found


def run_one(bench: Bench, system: System, shape: Workload, index: int) -> dict[str, Any]:
    load = summary.machine()["load_average"][0]
    progress(f"{system.name}: {shape.label} (load {load:.2f})")
    system.start()
    meter = bench.meter(system)
    try:
        outcome = workload.run(
            bench.kube,
            system,
            shape,
            namespace=f"w{index:02d}-{system.name}",
            index=index,
            progress=progress,
            exec_cni=system.name != "floor",
        )
        where = meter.delta()
        settle = system.settle() if isinstance(system, Nicpool) else None
    finally:
        system.stop()
    entry = summary.row(outcome, load)
    if settle is not None:
        entry["release_seconds"] = round(settle, 2)
    entry["where"] = where
    progress(json.dumps(entry))
    progress(
        f"  -> {entry['seconds']} s, ADD p50 {entry['add_p50_ms']} ms, p99 {entry['add_p99_ms']}"
        f" ms, {entry['errors']} errors"
    )
    bench.samples.append(samples_of(outcome))
    return entry


def samples_of(outcome: workload.Outcome) -> dict[str, Any]:
    """Raw series for the plots: ADD latencies and completion times, done times."""
    shape = outcome.workload
    return {
        "name": outcome.system,
        "pods": shape.pods,
        "nics_per_pod": shape.nics,
        "callers": shape.callers,
        "add_ms": [round((e.ended - e.started) * 1000, 1) for e in outcome.adds if not e.error],
        "add_done_s": sorted(round(e.ended - outcome.begin, 3) for e in outcome.adds),
        "done_s": sorted(round(t - outcome.begin, 3) for t in outcome.done.values()),
    }


def peers(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    systems = bench.systems()
    floor = Floor(bench.kube, bench.plane.kubeconfig, bench.workdir)
    rows: list[dict[str, Any]] = []
    index = 0
    for pods in args.pods:
        for nics in args.nics:
            rows.append(run_one(bench, floor, Workload(pods, nics, 0), index))
            index += 1
            for callers in args.callers:
                for system in systems.values():
                    rows.append(run_one(bench, system, Workload(pods, nics, callers), index))
                index += 1
    summary.ratios(rows)
    return rows


def scale(bench: Bench) -> list[dict[str, Any]]:
    plane = bench.plane
    prefix = f"/nicpool-bench-scale-{uuid.uuid4().hex[:6]}/v1/"
    settings = EtcdSettings(endpoints=(bench.nicpool_etcd.endpoint,), prefix=prefix)
    etcd = EtcdClient(settings)
    store = NicpoolStore(plane.kubeconfig, etcd, bench.nicpool_etcd.endpoint, prefix)
    runner = Scale(bench.kube, store=store, progress=progress)
    steps: list[dict[str, Any]] = []
    try:
        runner.setup()
        for leases in bench.args.scale:
            progress(f"scale: {leases} leases (load {summary.machine()['load_average'][0]:.2f})")
            try:
                steps.append(runner.measure(leases))
            except Exception as exc:  # a failure at scale is a result; later steps need this one
                progress(f"  scale step {leases} failed: {exc}")
                steps.append({"leases": leases, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                break
            progress(f"  -> {json.dumps(steps[-1])}")
    finally:
        runner.stop()
        etcd.close()
    return steps


def profile(bench: Bench, shape: Workload) -> dict[str, Any]:
    """One more nicpool run of ``shape``, not counted, with py-spy on the controller."""
    nicpool = bench.systems(only="nicpool")["nicpool"]
    assert isinstance(nicpool, Nicpool)
    progress(f"profiling the controller with py-spy: nicpool {shape.label} (not counted)")
    nicpool.start()
    assert nicpool.controller is not None
    recorder = Recorder(nicpool.controller.pid, bench.workdir / "py-spy.txt")
    try:
        run = workload.run(
            bench.kube, nicpool, shape, namespace="profile", index=60, progress=progress
        )
        found = recorder.stop()
        nicpool.settle()
    finally:
        nicpool.stop()
    found["workload"] = shape.label
    found["seconds_while_profiled"] = summary.row(run, 0.0)["seconds"]
    return found


def previous(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = summary.machine()
    bench = Bench(args)
    kept = previous(args.output)
    result: dict[str, Any] = {"measured_at": summary.now()}
    if args.skip_peers:  # keep the peers rows of the last run
        result.update({k: v for k, v in kept.items() if k not in ("scale", "measured_at")})

    def save() -> None:
        result["machine"] = {**summary.machine(), "load_average_at_start": started["load_average"]}
        result["whereabouts_leader_election_ms"] = LEADER_ELECTION_MS
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        progress(f"wrote {args.output}")

    try:
        bench.start()
        if not args.skip_peers:
            rows = peers(bench)
            result["systems"] = rows
            shape = Workload(max(args.pods), max(args.nics), max(args.callers))
            result.update(summary.headline(rows, shape.pods, shape.nics, shape.callers))
            if args.profile:
                result["nicpool_controller_profile"] = profile(bench, shape)
            save()  # the peers phase is kept even if the scale phase dies
        result["scale"] = scale(bench) if args.scale else kept.get("scale", [])
    finally:
        bench.stop()
    save()
    figures = args.output.parent / args.output.stem
    if bench.samples:
        figures.mkdir(parents=True, exist_ok=True)
        (figures / "samples.json").write_text(json.dumps(bench.samples) + "\n")
    samples_file = figures / "samples.json"
    samples = json.loads(samples_file.read_text()) if samples_file.exists() else []
    for path in plots.draw(result, samples, figures):
        progress(f"wrote {path}")
    print(table.peers_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
