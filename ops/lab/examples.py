"""The reference document's manifests (``ops/examples``), as the lab and the tests read them.

The seed's macvlan NetworkAttachmentDefinition is read from
``ops/examples/02-nad-macvlan.yaml`` (exactly as the document writes it)
rather than pasted into each test. Only what a test must change is
changed, by name: ``master`` (this machine has no ``eth0`` to give macvlan;
the lab's veth stands in for it) and, for a test that needs a NAD of its own
namespace, ``provider``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.lab.kube_objects import load_documents

EXAMPLES = Path(__file__).resolve().parents[2] / "ops" / "examples"
SEED_NAD = EXAMPLES / "02-nad-macvlan.yaml"


def seed_nad(**changes: Any) -> dict[str, Any]:
    """The seed's NAD object; ``changes`` replace keys of its CNI config."""
    (doc,) = load_documents(SEED_NAD)
    config = {**json.loads(doc["spec"]["config"]), **changes}
    return {**doc, "spec": {**doc["spec"], "config": json.dumps(config)}}


def seed_nad_config(**changes: Any) -> dict[str, Any]:
    """The seed NAD's CNI config as a dict; ``changes`` replace its top-level keys
    (``ipam`` keys through ``ipam={...}`` merge into the seed's ``ipam``)."""
    config: dict[str, Any] = json.loads(seed_nad()["spec"]["config"])
    ipam = changes.pop("ipam", None)
    config.update(changes)
    if ipam is not None:
        config["ipam"] = {**config["ipam"], **ipam}
    return config
