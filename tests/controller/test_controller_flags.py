"""The settings issue 11 added, as an operator sets them: good values run, bad ones stop.

``nicpool-controller`` as a real process. A bad value (flag or environment
variable) must stop it at once with the flag named, before it joins the
election; the good ones must reach a controller that leads and allocates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ops.lab.cluster import Cluster
from ops.lab.controllers import REPO, ControllerProcess
from ops.lab.kube import ControlPlane
from tests.controller.conftest import leading_controller

pytestmark = pytest.mark.controller


def run_controller(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--address-cooldown", "-1"),
        ("--address-cooldown", "3601"),
        ("--address-cooldown", "nan"),
        ("--address-cooldown", "five"),
        ("--node-not-ready-grace", "-5"),
        ("--node-not-ready-grace", "inf"),
        ("--node-not-ready-grace", "5m"),
        ("--release-stuck-pods", "maybe"),
        ("--release-stuck-pods", ""),
    ],
)
def test_a_bad_value_stops_the_controller_naming_the_flag(flag: str, value: str) -> None:
    done = run_controller(f"{flag}={value}")
    assert done.returncode == 2
    assert f"argument {flag}:" in done.stderr


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("NICPOOL_ADDRESS_COOLDOWN", "-1"),
        ("NICPOOL_NODE_NOT_READY_GRACE", "soon"),
        ("NICPOOL_RELEASE_STUCK_PODS", "yess"),
    ],
)
def test_a_bad_environment_value_stops_the_controller_naming_the_variable(
    env: str, value: str
) -> None:
    done = run_controller(env={env: value})
    assert done.returncode == 2
    assert env in done.stderr


@pytest.fixture
def flagged(control_plane: ControlPlane) -> Iterator[ControllerProcess]:
    yield from leading_controller(
        control_plane,
        "flags",
        "--address-cooldown=0.5",
        "--node-not-ready-grace=0",
        "--release-stuck-pods=TRUE",
    )


def test_the_new_settings_reach_a_controller_that_allocates(
    control_plane: ControlPlane, flagged: ControllerProcess, kube_namespace: str
) -> None:
    cluster, ns = Cluster(control_plane.api_client()), kube_namespace
    provider = f"net.{ns}"
    config = {"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": provider}}
    cluster.create_nad(ns, "net", json.dumps(config))
    cluster.create_subnet(f"{ns}-flags", provider=provider, cidrBlock="10.101.0.0/24")
    try:
        cluster.create_pod(ns, "p", {"k8s.v1.cni.cncf.io/networks": f"{ns}/net"})
        cluster.allocated(ns, "p", provider)
        assert flagged.metric("nicpool_stuck_pods") == 0.0
        assert flagged.alive(), flagged.log_tail()
    finally:
        cluster.delete_cluster_object("subnets", f"{ns}-flags")
