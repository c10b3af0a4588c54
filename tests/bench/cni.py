"""``kube-ovn`` ADD latency beside the Go ``host-local`` plugin, in one run.

``python -m tests.bench.cni [--iterations N]`` starts a real etcd, writes one
subnet and one lease through the store (the "already allocated" case: the
controller acted at pod creation), starts ``nicpool-agent`` as a process and
installs the plugin as the single file a node holds (``#!/usr/bin/python3
-IS``). Each sample is one exec of the plugin with a CNI environment and the
seed's macvlan config on stdin, timed from fork to exit: the plugin's start-up,
its HTTP request over the unix socket, the agent's one etcd read, and the
result on stdout. This is the IPAM-only exec (what macvlan does when it calls
``kube-ovn``); the macvlan link itself is not part of the timing.

host-local gets the same treatment in the same run, interleaved sample by
sample so both see the same machine load: one exec of
``/usr/lib/cni/host-local`` ADD (a fresh container ID each time, as kubelet
would) with a file-backed store in a temp dir. ``python3 -I -S -c pass`` is
timed too, as the floor for any Python plugin.

Writes ``tests/bench/results/cni.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cnibin import plugin
from cnibin.install import install_plugin
from ops.lab.cni import REFERENCE_PLUGINS, AgentProcess, pod_args
from ops.lab.etcd import EtcdServer, etcd_binary
from store.config import EtcdSettings
from store.core.identity import AttachmentRef, PodRef, PodUID, Provider, SubnetName
from store.core.requests import UNFENCED, AllocationRequest
from store.core.subnetspec import parse_subnet_spec
from store.etcd import connect
from store.leases import Ipam
from store.subnets import Subnets

PLUGIN_PYTHON = "/usr/bin/python3"
"""The interpreter in the installed plugin's shebang (cnibin.install's default)."""
RESULTS = Path(__file__).resolve().parent / "results" / "cni.json"
PREFIX = "/nicpool-bench/cni/v1/"


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile, in the samples' unit."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def timed(argv: list[str], env: dict[str, str], stdin: bytes) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {done.stdout!r} {done.stderr!r}")
    return elapsed


def seed_lease(endpoint: str) -> None:
    client = connect(EtcdSettings(endpoints=(endpoint,), prefix=PREFIX))
    try:
        spec = parse_subnet_spec(
            "macvlan",
            cidr_block="172.17.0.0/16",
            provider="macvlan.default",
            gateway="172.17.0.1",
            exclude_ips=["172.17.0.0..172.17.0.10"],
        )
        Subnets(client, PREFIX).put(spec, fence=UNFENCED)
        ref = AttachmentRef(PodRef("default", "samplepod"), Provider("macvlan.default"))
        request = AllocationRequest(
            ref=ref, uid=PodUID("bench-uid"), subnet=SubnetName("macvlan"), interface="net1"
        )
        Ipam(client, PREFIX).allocate([request], fence=UNFENCED)
    finally:
        client.close()


def cni_env(command: str, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, **extra}


def configs(socket: Path, workdir: Path) -> tuple[bytes, bytes]:
    """stdin for each plugin: the seed's macvlan NAD (kube-ovn), and host-local's."""
    ipam = {"type": "kube-ovn", "server_socket": str(socket), "provider": "macvlan.default"}
    kube: dict[str, Any] = {"cniVersion": "0.3.0", "name": "macvlan", "type": "macvlan"}
    kube |= {"master": "eth0", "mode": "bridge", "ipam": ipam}
    local = {"type": "host-local", "subnet": "10.250.0.0/16", "dataDir": str(workdir / "hl")}
    host: dict[str, Any] = {"cniVersion": "0.3.0", "name": "bench", "type": "macvlan"}
    host["ipam"] = local
    return json.dumps(kube).encode(), json.dumps(host).encode()


def run_samples(
    kube_ovn: Path, socket: Path, workdir: Path, iterations: int, warmup: int
) -> dict[str, list[float]]:
    kube_conf, host_conf = configs(socket, workdir)
    args = ";".join(f"{k}={v}" for k, v in pod_args("default", "samplepod", "bench-uid").items())
    base = {"CNI_IFNAME": "net1", "CNI_NETNS": "/var/run/netns/bench", "CNI_ARGS": args}
    base["CNI_PATH"] = f"{kube_ovn.parent}:{REFERENCE_PLUGINS}"
    samples: dict[str, list[float]] = {"kube_ovn": [], "host_local": [], "python": []}
    total = warmup + iterations
    for i in range(total):
        cid = secrets.token_hex(8)
        env = cni_env("ADD", CNI_CONTAINERID=cid, **base)
        k = timed([str(kube_ovn)], env, kube_conf)
        h = timed([str(REFERENCE_PLUGINS / "host-local")], env, host_conf)
        p = timed([PLUGIN_PYTHON, "-I", "-S", "-c", "pass"], env, b"")
        if i >= warmup:
            samples["kube_ovn"].append(k)
            samples["host_local"].append(h)
            samples["python"].append(p)
        if (i + 1) % 50 == 0 or i + 1 == total:
            print(
                f"  {i + 1}/{total} samples (kube-ovn {k:.1f} ms, host-local {h:.1f} ms)",
                file=sys.stderr,
                flush=True,
            )
    return samples


def agent_roundtrips(socket: Path, iterations: int) -> list[float]:
    """The agent's share: one ADD request over the socket (and one etcd read), no exec."""
    request = {
        "pod_name": "samplepod",
        "pod_namespace": "default",
        "container_id": "bench",
        "net_ns": "/var/run/netns/bench",
        "if_name": "net1",
        "provider": "macvlan.default",
        "routes": [],
        "pod_uid": "bench-uid",
    }
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        status, _ = plugin.http_unix(str(socket), "POST", "/api/v1/add", request, 30)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"agent answered {status}")
    return samples


KEYS = {
    "kube_ovn": "kube_ovn_add",
    "host_local": "host_local_add",
    "python": "python_IS_pass",
    "agent": "agent_roundtrip",
}


def summarize(samples: dict[str, list[float]], iterations: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, values in samples.items():
        key = KEYS[name]
        result[f"{key}_p50_ms"] = round(percentile(values, 50), 2)
        result[f"{key}_p99_ms"] = round(percentile(values, 99), 2)
    result["ratio_p50"] = round(result["kube_ovn_add_p50_ms"] / result["host_local_add_p50_ms"], 2)
    result["ratio_p99"] = round(result["kube_ovn_add_p99_ms"] / result["host_local_add_p99_ms"], 2)
    result["goal"] = "p50 within 3x of host-local, p99 under 100 ms"
    result["goal_met"] = result["ratio_p50"] <= 3 and result["kube_ovn_add_p99_ms"] < 100
    result["iterations"] = iterations
    result["mode"] = (
        "IPAM-only exec of the installed single-file plugin (python3 -IS), "
        "through nicpool-agent and one etcd read; no link setup"
    )
    plugin_python = subprocess.run(
        [PLUGIN_PYTHON, "-IS", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    result["machine"] = {
        "plugin_python": plugin_python,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
    }
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return result


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("kube-ovn ADD (allocated lease)", "kube_ovn_add"),
        ("host-local ADD", "host_local_add"),
        ("python3 -I -S -c pass", "python_IS_pass"),
        ("agent round trip, no exec", "agent_roundtrip"),
    ]
    print(f"\n{'':34} {'p50 ms':>8} {'p99 ms':>8}")
    for label, key in rows:
        print(f"{label:34} {result[f'{key}_p50_ms']:8.2f} {result[f'{key}_p99_ms']:8.2f}")
    print(
        f"{'ratio kube-ovn / host-local':34} {result['ratio_p50']:8.2f} {result['ratio_p99']:8.2f}"
    )
    print(f"goal ({result['goal']}): {'met' if result['goal_met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.cni", description=__doc__)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    binary = etcd_binary()
    if binary is None or not (REFERENCE_PLUGINS / "host-local").exists():
        print("bench-cni needs etcd and the CNI reference plugins (make deps)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="nicpool-bench-cni-"))
    etcd = EtcdServer(binary=binary)
    try:
        print("starting etcd, writing one lease, starting nicpool-agent", file=sys.stderr)
        etcd.start()
        seed_lease(etcd.endpoint)
        with AgentProcess(etcd.endpoint, PREFIX) as agent:
            kube_ovn = install_plugin(workdir / "bin")
            print(
                f"timing {args.iterations} ADDs of each (+{args.warmup} warm-up)", file=sys.stderr
            )
            samples = run_samples(kube_ovn, agent.socket, workdir, args.iterations, args.warmup)
            print("timing the agent's round trip alone", file=sys.stderr)
            samples["agent"] = agent_roundtrips(agent.socket, args.iterations)
    finally:
        etcd.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    result = summarize(samples, args.iterations)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
