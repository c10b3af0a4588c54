"""Kubernetes objects for tests: load YAML, apply it, wait for CRDs, read errors.

Separate from :mod:`ops.lab.kube` (which runs the processes) because
these work against any apiserver, given a ``kubernetes.client.ApiClient``.
Everything here uses the official client: tests may, production code may not
(only ``reconciler.kube`` talks to the API).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

FIELD_MANAGER = "nicpool-tests"


def load_documents(source: str | Path) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a path or of YAML text.

    A one-line string naming an existing file is read as that file, so
    ``apply_yaml("ops/examples/02-nad-macvlan.yaml")`` does what it says.
    """
    if isinstance(source, str) and "\n" not in source and Path(source).is_file():
        source = Path(source)
    text = source.read_text() if isinstance(source, Path) else source
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in documents:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise ValueError(f"not a Kubernetes object (no kind/apiVersion): {doc!r:.200}")
    return documents


def apply_documents(
    api_client: Any,
    documents: Sequence[dict[str, Any]],
    *,
    namespace: str | None,
    dry_run: bool,
    cache_file: Path,
    create: bool = False,
) -> list[dict[str, Any]]:
    """Server-side apply (or, with ``create``, POST) each document; see ``apply_yaml``."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    dynamic = DynamicClient(api_client, cache_file=str(cache_file))  # type: ignore[no-untyped-call]
    results = []
    for doc in documents:
        kind, api_version = doc["kind"], doc["apiVersion"]
        try:
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            # A CRD applied a moment ago: discovery was cached before it existed.
            dynamic.resources.invalidate_cache()
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
        target_ns = None
        if resource.namespaced:
            target_ns = doc.get("metadata", {}).get("namespace") or namespace or "default"
        options: dict[str, Any] = {
            "namespace": target_ns,
            "field_manager": FIELD_MANAGER,
            "dry_run": "All" if dry_run else None,
            "query_params": [("fieldValidation", "Strict")],
        }
        if create:
            response = dynamic.create(resource, body=doc, **options)  # type: ignore[no-untyped-call]
        else:
            response = dynamic.server_side_apply(  # type: ignore[no-untyped-call]
                resource, body=doc, force_conflicts=True, **options
            )
        results.append(response.to_dict())
    return results


def wait_established(api_client: Any, crd_names: Sequence[str], timeout: float) -> None:
    """Block until every named CRD reports Established=True."""
    from kubernetes.client import ApiextensionsV1Api

    api = ApiextensionsV1Api(api_client)
    deadline = time.monotonic() + timeout
    pending = set(crd_names)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            status = api.read_custom_resource_definition(name).status
            conditions = (status.conditions if status else None) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending:
            time.sleep(0.1)
    if pending:
        raise RuntimeError(f"CRDs not established after {timeout}s: {sorted(pending)}")


def describe_api_error(error: Exception) -> str:
    """The server's message from a client exception (for asserting on it)."""
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            return str(json.loads(body).get("message", body))
        except ValueError:
            return body
    return str(error)
