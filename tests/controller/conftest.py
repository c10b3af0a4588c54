"""Fixtures of the controller tier: a real kube-apiserver with nicpool's CRDs.

``control_plane`` (session scope) is one etcd + kube-apiserver +
kube-controller-manager for the whole run, CRDs from ``ops/deploy/crds``
installed. Tests share it, so each works in a namespace of its own
(``kube_namespace``) or uses names no other test uses for cluster-scoped
objects (Subnets, IPPools, IPs).

The e2e tier reuses these fixtures by importing them into its conftest::

    from tests.controller.conftest import control_plane, kube_namespace  # noqa: F401
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.lab.controllers import ControllerProcess
from ops.lab.kube import ControlPlane, find_assets
from tests.support.components import in_ci, missing


def kube_assets_or_missing() -> Path:
    """The binaries' directory; builds it in CI, fails (CI) or skips (elsewhere) without."""
    assets = find_assets(build=in_ci())
    if assets is None:
        missing(
            "kube-apiserver/kube-controller-manager/etcd test binaries",
            "set KUBEBUILDER_ASSETS or run `bash ops/tools/build-test-binaries.sh` "
            "(make test-binaries; ~10-15 min once)",
        )
        raise AssertionError("unreachable")
    return assets


def started_control_plane(**options: Any) -> Iterator[ControlPlane]:
    """Start a ControlPlane with the project's CRDs; stop it when the generator closes."""
    plane = ControlPlane(assets=kube_assets_or_missing(), **options)
    plane.start()
    try:
        plane.install_crds()
        yield plane
    finally:
        plane.stop()


def leading_controller(
    plane: ControlPlane, name: str, *extra_args: str
) -> Iterator[ControllerProcess]:
    """A ``nicpool-controller`` process on its own etcd prefix, leading; stopped after.

    The one way the tier starts a controller process (``yield from`` it in a
    fixture); ``name`` is its identity and names its prefix.
    """
    assert plane.etcd is not None
    process = ControllerProcess(
        plane.kubeconfig,
        plane.etcd.endpoint,
        f"/nicpool-{name}-{uuid.uuid4().hex[:6]}/v1/",
        identity=name,
        extra_args=list(extra_args),
    ).start()
    try:
        process.wait_leader()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver (AlwaysAllow) + kube-controller-manager, CRDs installed."""
    yield from started_control_plane()


@pytest.fixture
def kube_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (its objects go with it)."""
    from kubernetes.client import CoreV1Api, V1Namespace, V1ObjectMeta

    name = f"t-{uuid.uuid4().hex[:10]}"
    core = CoreV1Api(control_plane.api_client())
    core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
