"""The only module that talks to etcd.

It wraps the client library (etcd-sdk-python, the maintained fork of
python-etcd3, imported as ``pyetcd``) behind a handful of typed calls
(``get``, ``get_prefix``, ``txn``, ``watch_key``, leases) that take and return
the plain values of ``store.core.ops``, and it translates the library's and
gRPC's exceptions into ``store.errors`` in one place.

Library traps handled here:

* an endpoint that failed once is shunned for ``time_retry`` seconds (300 by
  default), so with a single endpoint one etcd restart would break the
  client for five minutes; endpoints are built with a 1 s retry instead;
* the library's ``transaction`` drops the response header, so requests go
  through the KV stub directly; its failover (mark the endpoint failed, drop
  the stubs bound to its channel) lives in a decorator those direct calls
  bypass, so :meth:`EtcdClient._call` does the same on every failure: with a
  3-member cluster a dead member is left for the next one at once;
* a connection that goes silent without a FIN (a black-holed member) is
  noticed by HTTP/2 keepalive pings (every 10 s, 5 s to answer, while a call
  or watch is in flight, as etcd permits), not by waiting for the kernel's
  TCP timeout; unary calls also carry a deadline, and one that runs into it
  makes the calls after it use a new connection (:meth:`EtcdClient._renew`);
* gRPC refuses a response over the client's receive limit (4 MiB, set
  explicitly below): range reads are paged, and a page that still comes back
  too large is read again in halves (:meth:`EtcdClient.iter_prefix`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
from pyetcd import etcdrpc
from pyetcd import exceptions as etcd_exc
from pyetcd.client import Endpoint, MultiEndpointEtcd3Client
from pyetcd.etcdrpc.auth_pb2 import Permission

from store.config import EtcdSettings
from store.core.identity import Revision
from store.core.ops import (
    Compare,
    Get,
    KeyValue,
    Op,
    Put,
    TxnResult,
)
from store.errors import Compacted, PermissionDenied, TooLarge, Unavailable
from store.etcdwire import event_key_value, key_value, prefix_end, txn_request

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""gRPC's receive limit for one response; records are capped far below it
(``store.core.ops.MAX_RECORD_BYTES``), and range reads page under it."""

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    # Notice a silent connection within ~15 s (etcd's server allows pings
    # every 5 s: --grpc-keepalive-min-time) while a call is in flight (a watch
    # is one for as long as it runs). Never without one: etcd's policy does
    # not permit it (PermitWithoutStream false), and after three such pings
    # it closes the connection with GOAWAY too_many_pings.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    # A channel of its own connections: gRPC otherwise shares one connection
    # among every channel to the same target, and a renewed channel
    # (EtcdClient._renew) would find the dead connection again.
    ("grpc.use_local_subchannel_pool", 1),
)

_FAILOVER_CODES = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
)

_TEMPORARY_LIBRARY_ERRORS = (
    etcd_exc.ConnectionFailedError,
    etcd_exc.ConnectionTimeoutError,
    etcd_exc.InternalServerError,
    etcd_exc.NoServerAvailableError,
    etcd_exc.PreconditionFailedError,
)


def _translated(
    call: Callable[[], T], what: str, on_rpc_error: Callable[[Any], None] | None = None
) -> T:
    """Run ``call``; library and gRPC failures become ``store.errors``."""
    try:
        return call()
    except etcd_exc.RevisionCompactedError as exc:
        raise Compacted(f"{what}: revision compacted") from exc
    except _TEMPORARY_LIBRARY_ERRORS as exc:
        raise Unavailable(f"{what}: etcd unavailable ({type(exc).__name__})") from exc
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        if on_rpc_error is not None:
            on_rpc_error(code)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise TooLarge(f"{what}: {exc.details() if hasattr(exc, 'details') else code}") from exc
        if code == grpc.StatusCode.PERMISSION_DENIED:
            raise PermissionDenied(f"{what}: etcd refused: permission denied") from exc
        raise Unavailable(f"{what}: etcd error {code}") from exc
    except ValueError as exc:
        # The library raises ValueError("Trying to use a failed node").
        raise Unavailable(f"{what}: {exc}") from exc


class EtcdClient:
    """A connection to one etcd cluster. Thread safe, as gRPC channels are."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        creds = None
        secure = settings.cacert is not None
        if secure:
            creds = MultiEndpointEtcd3Client.get_secure_creds(
                settings.cacert, settings.key, settings.cert
            )
        endpoints = [
            Endpoint(
                host, port, secure=secure, creds=creds, time_retry=1.0, opts=list(CHANNEL_OPTIONS)
            )
            for host, port in settings.hosts()
        ]
        self._client = MultiEndpointEtcd3Client(
            endpoints=endpoints, timeout=settings.timeout, failover=True
        )
        self._renewing = threading.Lock()
        self._retired: dict[str, Any] = {}
        """Per endpoint, the channel last replaced (see :meth:`_renew`)."""

    def close(self) -> None:
        self._client.close()
        with self._renewing:
            retired, self._retired = list(self._retired.values()), {}
        for channel in retired:
            channel.close()

    def _call(self, rpc: Callable[[Any], T], what: str) -> T:
        """One unary call on the current endpoint's KV stub, failing over on error."""
        return _translated(lambda: rpc(self._client.kvstub), what, self._failed)

    def _failed(self, code: Any) -> None:
        """The library's failover, for the stub calls its decorator does not wrap."""
        endpoint = self._client.endpoint_in_use
        if code in _FAILOVER_CODES and endpoint is not None:
            endpoint.fail()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                self._renew(endpoint)
            self._client._clear_old_stubs()  # stubs stay bound to the dead channel otherwise

    def _renew(self, endpoint: Endpoint) -> None:
        """Calls after this one go over a new connection to ``endpoint``.

        A call that ran into its deadline may have met a connection that died
        without a word (a black hole): keepalive pings only run while a call
        is in flight (etcd's policy), so a client of short unary calls could
        otherwise meet the dead connection call after call until the kernel
        gave it up. The replaced channel is not closed at once, so calls and
        watches still in flight on it (etcd may just be slow) finish or fail
        on their own; it is closed when the endpoint is renewed again, or
        with the client.
        """
        with self._renewing:
            older = self._retired.pop(endpoint.netloc, None)
            self._retired[endpoint.netloc] = endpoint.channel
            endpoint.channel = endpoint._mkchannel(list(CHANNEL_OPTIONS))
        if older is not None:
            older.close()

    # -- reads -----------------------------------------------------------

    def get(self, key: str) -> tuple[KeyValue | None, Revision]:
        """The key (or None) and the store revision it was read at."""
        request = etcdrpc.RangeRequest(key=key.encode())
        response = self._call(lambda kv: kv.Range(request, self._timeout()), key)
        found = key_value(response.kvs[0]) if response.kvs else None
        return found, Revision(response.header.revision)

    def get_prefix(
        self, prefix: str, *, keys_only: bool = False, limit: int = 0, start: str | None = None
    ) -> tuple[list[KeyValue], Revision]:
        """Keys under ``prefix`` in key order, from ``start`` when paging."""
        request = etcdrpc.RangeRequest(
            key=(start or prefix).encode(),
            range_end=prefix_end(prefix),
            keys_only=keys_only,
            limit=limit,
        )
        response = self._call(lambda kv: kv.Range(request, self._timeout()), prefix)
        return [key_value(kv) for kv in response.kvs], Revision(response.header.revision)

    def iter_prefix(
        self, prefix: str, *, page: int = 1000, keys_only: bool = False
    ) -> Iterator[KeyValue]:
        """Every key under ``prefix``, read in pages so no response outgrows gRPC's limit.

        Records vary in size (an attachment carries the pod's routes), so a
        page of ``page`` keys may still be too large: it is read again in
        halves, down to one key (which always fits: records are capped).
        """
        start: str | None = None
        size = page
        while True:
            try:
                kvs, _ = self.get_prefix(prefix, limit=size, start=start, keys_only=keys_only)
            except TooLarge:
                if size == 1:
                    raise
                size = max(1, size // 2)
                continue
            yield from kvs
            if len(kvs) < size:
                return
            start = kvs[-1].key + "\0"
            size = page

    def count_prefix(self, prefix: str) -> int:
        request = etcdrpc.RangeRequest(
            key=prefix.encode(), range_end=prefix_end(prefix), count_only=True
        )
        response = self._call(lambda kv: kv.Range(request, self._timeout()), prefix)
        return int(response.count)

    # -- transactions ----------------------------------------------------

    def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        request = txn_request(compares, success, failure)
        response = self._call(lambda kv: kv.Txn(request, self._timeout()), "txn")
        ops = success if response.succeeded else failure
        gets: list[KeyValue | None] = []
        if any(type(op) is Get for op in ops):
            for op, result in zip(ops, response.responses, strict=True):
                if type(op) is Get:
                    kvs = result.response_range.kvs
                    gets.append(key_value(kvs[0]) if kvs else None)
        return TxnResult(bool(response.succeeded), Revision(response.header.revision), tuple(gets))

    def put(self, key: str, value: bytes) -> Revision:
        """An unconditional write: only for keys no invariant depends on."""
        return self.txn([], [Put(key, value)]).revision

    def delete_prefix(self, prefix: str) -> None:
        _translated(lambda: self._client.delete_prefix(prefix), prefix)

    # -- watches -----------------------------------------------------------

    def watch_key(self, key: str, *, start_revision: int, timeout: float) -> list[KeyValue]:
        """The first changes of ``key`` from ``start_revision`` on ([] after ``timeout``).

        A deletion is returned as a KeyValue with an empty value and
        create_revision 0.
        """
        return self._first_events(
            lambda: self._client.watch_once_response(
                key, timeout=timeout, start_revision=start_revision
            ),
            f"watch {key}",
        )

    def watch_prefix(self, prefix: str, *, start_revision: int, timeout: float) -> list[KeyValue]:
        """The first changes under ``prefix`` from ``start_revision`` on ([] after ``timeout``).

        Every event of etcd's first response: one transaction that writes
        several keys under ``prefix`` arrives as one response with several
        events, all at one revision, and the caller must see each of them
        (the next watch starts after that revision). Deletions come back as
        in :meth:`watch_key`.
        """
        return self._first_events(
            lambda: self._client.watch_prefix_once_response(
                prefix, timeout=timeout, start_revision=start_revision
            ),
            f"watch {prefix}",
        )

    @staticmethod
    def _first_events(call: Callable[[], Any], what: str) -> list[KeyValue]:
        try:
            response = _translated(call, what)
        except etcd_exc.WatchTimedOut:
            return []
        if isinstance(response, BaseException):
            # The library hands a broken watch stream's error (etcd restarted,
            # revision compacted) to the watch callback as if it were a response.
            _translated(lambda: _reraise(response), what)
            raise Unavailable(f"{what}: stream failed ({type(response).__name__})")
        if not response.events:
            raise Unavailable(f"{what}: a response without events")
        return [event_key_value(event) for event in response.events]

    # -- leases ------------------------------------------------------------

    def grant_lease(self, ttl: int) -> int:
        lease = _translated(lambda: self._client.lease(ttl), "lease grant")
        return int(lease.id)

    def keepalive(self, lease_id: int) -> int:
        """Refresh a lease once; returns its remaining TTL (0: it has expired)."""

        def refresh() -> int:
            responses = list(self._client.refresh_lease(lease_id))
            return int(responses[0].TTL) if responses else 0

        return _translated(refresh, "lease keepalive")

    def revoke_lease(self, lease_id: int) -> None:
        _translated(lambda: self._client.revoke_lease(lease_id), "lease revoke")

    # -- auth (set up once by an administrator: nicpoolctl access setup) ------------

    def user_add(self, name: str, password: str) -> bool:
        """Create a user; False when it exists already."""
        request = etcdrpc.AuthUserAddRequest(name=name, password=password)
        return self._auth_add(lambda stub: stub.UserAdd(request, self._timeout()), f"user {name}")

    def role_add(self, name: str) -> bool:
        """Create a role; False when it exists already."""
        request = etcdrpc.AuthRoleAddRequest(name=name)
        return self._auth_add(lambda stub: stub.RoleAdd(request, self._timeout()), f"role {name}")

    def role_grant_prefix(self, role: str, prefix: str, *, write: bool) -> None:
        """Let ``role`` read (and, with ``write``, write) every key under ``prefix``."""
        kind = Permission.READWRITE if write else Permission.READ
        perm = Permission(permType=kind, key=prefix.encode(), range_end=prefix_end(prefix))
        request = etcdrpc.AuthRoleGrantPermissionRequest(name=role, perm=perm)
        _translated(
            lambda: self._client.authstub.RoleGrantPermission(request, self._timeout()),
            f"grant {role}",
        )

    def user_grant_role(self, user: str, role: str) -> None:
        request = etcdrpc.AuthUserGrantRoleRequest(user=user, role=role)
        _translated(
            lambda: self._client.authstub.UserGrantRole(request, self._timeout()),
            f"grant {role} to {user}",
        )

    def auth_enable(self) -> None:
        request = etcdrpc.AuthEnableRequest()
        _translated(
            lambda: self._client.authstub.AuthEnable(request, self._timeout()), "auth enable"
        )

    def _auth_add(self, call: Callable[[Any], Any], what: str) -> bool:
        try:
            call(self._client.authstub)
        except grpc.RpcError as exc:
            failed = exc
            if failed.code() == grpc.StatusCode.FAILED_PRECONDITION and "exist" in str(
                failed.details()
            ):
                return False
            _translated(lambda: _reraise(failed), what)
        return True

    def _timeout(self) -> float:
        return self.settings.timeout


def _reraise(exc: BaseException) -> Any:
    raise exc


def connect(settings: EtcdSettings) -> EtcdClient:
    return EtcdClient(settings)
