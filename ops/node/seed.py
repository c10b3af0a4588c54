"""The reference document's objects (``ops/examples``) as the node runs them.

Applied verbatim but for one thing: every container image becomes the lab's
busybox image with ``imagePullPolicy: Never`` (the seed names
``docker.io/library/alpine:edge`` and ``nginx:alpine``; the node has no
registry). busybox has ``/bin/ash``, ``sleep`` and ``ip``, so the seed's own
commands run, and a container without a command (the seed's nginx) runs the
image's default: sleep until stopped. The NAD's ``"master": "eth0"`` stays
as written: the node's ``eth0`` is a veth inside the node's namespace.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from ops.lab.binaries import REPO
from ops.lab.kube_objects import load_documents
from ops.node.runtime import BUSYBOX_IMAGE

EXAMPLES = REPO / "ops" / "examples"
SUBNET, NAD = "03-subnet-macvlan.yaml", "02-nad-macvlan.yaml"
PODS = (
    "04-pod-samplepod.yaml",
    "05-pod-static-ip.yaml",
    "07-pod-samplepod-route.yaml",
    "08-pod-samplepod-macvlan.yaml",
)
DEPLOYMENT = "06-deployment-static-workload.yaml"
DEPLOYMENT_SELECTOR = "app=static-workload"


def local_images(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose containers run the lab's busybox image."""
    doc = copy.deepcopy(document)
    spec = doc["spec"]["template"]["spec"] if "template" in doc.get("spec", {}) else doc["spec"]
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        if "image" in container:
            container["image"] = BUSYBOX_IMAGE
            container["imagePullPolicy"] = "Never"
    return doc


def documents(*files: str) -> list[dict[str, Any]]:
    """The files' objects, images made local; in the order given."""
    found = []
    for name in files:
        for doc in load_documents(EXAMPLES / name):
            found.append(local_images(doc) if doc["kind"] in ("Pod", "Deployment") else doc)
    return found


def as_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def seed_files() -> tuple[str, ...]:
    """Subnet and NAD first (the controller needs both), then the workloads."""
    return (SUBNET, NAD, *PODS, DEPLOYMENT)
