"""REST against the apiserver with JSON dicts over one pooled urllib3 connection set.

Why not the generated client's models: deserialising a Pod into
``V1Pod`` costs milliseconds of CPU, more than the IPAM work for it, and
the controller reads only a handful of fields. So requests go out as JSON
and come back as dicts; authentication and TLS settings still come from
the official kubeconfig loader (:mod:`reconciler.kube.config`).

Every failure leaves this module as a nicpool error (:mod:`.errors`).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3

from reconciler.kube.errors import Gone, KubeUnavailable, NotFound, from_status
from reconciler.kube.resources import Resource

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Endpoint:
    """Where the apiserver is and how to authenticate (from a kubeconfig)."""

    host: str
    authorization: Callable[[], str | None]
    """Returns the ``Authorization`` header value (refreshing tokens when needed)."""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True


class KubeClient:
    """Thread safe; share one per process."""

    def __init__(self, endpoint: Endpoint, *, pool_size: int = 64, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        context = ssl.create_default_context(cafile=endpoint.ca_file)
        if not endpoint.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if endpoint.cert_file:
            context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, ssl_context=context, retries=False
        )

    def close(self) -> None:
        self._pool.clear()

    # -- plumbing ------------------------------------------------------------

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "nicpool-controller"}
        auth = self.endpoint.authorization()
        if auth:
            headers["Authorization"] = auth
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = self.endpoint.host.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        if data is not None and content_type is None:
            content_type = "application/json"
        try:
            response = self._pool.request(
                method,
                url,
                body=data,
                headers=self._headers(content_type),
                preload_content=not stream,
                timeout=urllib3.Timeout(connect=10.0, read=timeout or self.timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnavailable(f"{method} {path}: {exc}") from exc
        if response.status >= 300:
            payload = response.data if not stream else response.read()
            raise from_status(response.status, payload or b"", f"{method} {path}")
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        response = self._open(method, path, **kwargs)
        try:
            doc = json.loads(response.data or b"{}")
        except ValueError as exc:
            raise KubeUnavailable(f"{method} {path}: unreadable answer ({exc})") from exc
        return doc if isinstance(doc, dict) else {}

    # -- verbs ---------------------------------------------------------------

    def list_pages(
        self, resource: Resource, *, page: int = 500
    ) -> Iterator[tuple[list[JSON], str]]:
        """The list of ``resource`` one page at a time, each with the list's resourceVersion.

        Pages of one list are one consistent snapshot (the ``continue`` token
        pins it), so a caller may act on a page before the next is asked for.
        """
        query = {"limit": str(page)}
        while True:
            doc = self.request("GET", resource.collection(), query=query)
            meta = doc.get("metadata") or {}
            yield doc.get("items") or [], str(meta.get("resourceVersion", ""))
            token = meta.get("continue")
            if not token:
                return
            query = {"limit": str(page), "continue": token}

    def list(self, resource: Resource, *, page: int = 500) -> tuple[list[JSON], str]:
        """Every object of ``resource`` (all namespaces) and the list's resourceVersion."""
        items: list[JSON] = []
        version = ""
        for chunk, listed_at in self.list_pages(resource, page=page):
            items.extend(chunk)
            version = listed_at
        return items, version

    def watch(
        self, resource: Resource, resource_version: str, *, timeout_seconds: int = 300
    ) -> Iterator[tuple[str, JSON]]:
        """``(type, object)`` events from ``resource_version`` until the server ends the watch."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        response = self._open(
            "GET", resource.collection(), query=query, stream=True, timeout=timeout_seconds + 15
        )
        try:
            for line in _lines(response):
                event = json.loads(line)
                kind, obj = event.get("type", ""), event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code", 500))
                    if code == 410:
                        raise Gone(f"watch {resource.plural}: {obj.get('message', 'expired')}")
                    raise from_status(code, json.dumps(obj), f"watch {resource.plural}")
                yield kind, obj
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise KubeUnavailable(f"watch {resource.plural}: {exc}") from exc
        finally:
            response.release_conn()

    def get(self, resource: Resource, namespace: str | None, name: str) -> JSON | None:
        try:
            return self.request("GET", resource.item(namespace, name))
        except NotFound:
            return None

    def create(self, resource: Resource, namespace: str | None, body: JSON) -> JSON:
        return self.request("POST", resource.collection(namespace), body=body)

    def update(self, resource: Resource, namespace: str | None, name: str, body: JSON) -> JSON:
        return self.request("PUT", resource.item(namespace, name), body=body)

    def delete(self, resource: Resource, namespace: str | None, name: str) -> bool:
        try:
            self.request("DELETE", resource.item(namespace, name))
        except NotFound:
            return False
        return True

    def merge_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: JSON,
        *,
        status: bool = False,
    ) -> JSON:
        path = resource.item(namespace, name) + ("/status" if status else "")
        return self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    pending = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
