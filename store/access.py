"""Setting up etcd auth for nicpool: users, roles, grants, then auth on.

The plan is :mod:`store.core.access`; this applies it through the etcd
client, idempotently (a user or role that exists is left as it is, grants
are re-applied), so it is safe to run again after adding a prefix or a
component. It must run as etcd's root (a client certificate with CN
``root``, or before auth is enabled at all).
"""

from __future__ import annotations

import secrets

from store.core.access import ROOT, Grant
from store.etcd import EtcdClient


def setup_access(client: EtcdClient, prefix: str, plan: list[Grant]) -> list[str]:
    """Apply ``plan`` on ``prefix`` and enable auth; returns what was done, one line each."""
    done: list[str] = []
    for grant in plan:
        if client.user_add(grant.user, _throwaway()):
            done.append(f"created user {grant.user}")
        if client.role_add(grant.user):
            done.append(f"created role {grant.user}")
        client.role_grant_prefix(grant.user, prefix, write=grant.write)
        client.user_grant_role(grant.user, grant.user)
        rights = "read-write" if grant.write else "read-only"
        done.append(f"{grant.user}: {rights} on {prefix}")
    if client.user_add(ROOT, _throwaway()):
        done.append("created user root")
    client.user_grant_role(ROOT, ROOT)
    client.auth_enable()
    done.append("auth enabled")
    return done


def _throwaway() -> str:
    """A password nobody keeps: these users log in with their certificate's CN."""
    return secrets.token_urlsafe(32)
