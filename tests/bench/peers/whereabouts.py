"""Whereabouts v0.9.2 as a peer: its CRDs, kubeconfig and flat file, and one exec per NIC.

The binary and its CRDs come from ``ops/tools/build-whereabouts.sh`` (built
from the Go module proxy into ``~/.cache/nicpool/bin/whereabouts-<ver>/``).
Whereabouts keeps its state in the cluster: per range an ``IPPool`` object
holding every allocation, per address an ``OverlappingRangeIPReservation``,
and one cluster-wide ``Lease`` named ``whereabouts`` that every ADD and DEL
acquires (client-go leader election) before reading and updating the pool.
All of them live in the namespace of the kubeconfig's current context, so
the runner writes a copy of the admin kubeconfig whose context names the
``whereabouts`` namespace, and a flat config file (the one
``ipam.configuration_path`` points at) naming that kubeconfig.

The leader-election timings stay at Whereabouts' defaults (lease 1500 ms,
renew deadline 1000 ms, retry period 500 ms: the plugin refuses values that
break ``lease > renew > 1.2 x retry``); they are recorded with the results.
Each workload gets fresh ranges, so every run starts from empty pools.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from ops.lab.kube import ControlPlane, wait_established
from reconciler.kube.client import KubeClient
from tests.bench.peers.plugins import network
from tests.bench.peers.systems import ExecPeer, create_nads

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "ops" / "tools" / "build-whereabouts.sh"
NAMESPACE = "whereabouts"
LEADER_ELECTION_MS = {"leader_lease_duration": 1500, "leader_renew_deadline": 1000}
LEADER_ELECTION_MS["leader_retry_period"] = 500


def whereabouts_dir(*, build: bool) -> Path | None:
    """The cache directory holding ``whereabouts`` and ``crds/`` (built when asked)."""
    args = ["bash", str(BUILD_SCRIPT)] + ([] if build else ["--cached-only"])
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    found = Path(done.stdout.strip().splitlines()[-1])
    return found if (found / "whereabouts").exists() else None


class Whereabouts(ExecPeer):
    name = "whereabouts"

    def __init__(self, plane: ControlPlane, kube: KubeClient, directory: Path, workdir: Path):
        self.kube = kube
        self.binary = directory / "whereabouts"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        crds = sorted((directory / "crds").glob("*.yaml"))
        applied = plane.apply_yaml_files(crds)
        wait_established(plane.api_client(), [o["metadata"]["name"] for o in applied], 30)
        kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": NAMESPACE}})
        self.kubeconfig = workdir / "whereabouts.kubeconfig"
        config = yaml.safe_load(plane.kubeconfig.read_text())
        for context in config["contexts"]:
            context["context"]["namespace"] = NAMESPACE
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.flat_file = workdir / "whereabouts.conf"
        flat = {
            "datastore": "kubernetes",
            "kubernetes": {"kubeconfig": str(self.kubeconfig)},
            "log_file": str(workdir / "whereabouts.log"),
            "log_level": "error",
        }
        self.flat_file.write_text(json.dumps(flat))

    def prepare(self, namespace: str, index: int, nics: int) -> list[bytes]:
        configs = []
        for nic in range(nics):
            ipam: dict[str, object] = {
                "type": "whereabouts",
                "range": f"10.{150 + 2 * index + nic}.0.0/16",
                "configuration_path": str(self.flat_file),
                **LEADER_ELECTION_MS,
            }
            configs.append(network(f"net{nic}", ipam))
        create_nads(self.kube, namespace, configs)
        return configs
