"""Who may do what in nicpool's etcd: one role per component (DESIGN.md, trust boundaries).

Every node runs an agent, so an agent's credentials are the ones most likely
to leak. With one read-write identity for everything, one compromised node
could rewrite the IPAM state of the whole cluster. So each component gets
its own etcd user, bound to the CN of its client certificate (etcd takes a
client certificate's CN as the user name when ``--client-cert-auth`` is on
and auth is enabled), with only the rights it needs on nicpool's prefix:

=======================  ================  ==========================================
user (certificate CN)    role              rights on the prefix
=======================  ================  ==========================================
``nicpool-controller``   same name         read and write (allocation, election)
``nicpool-agent``        same name         read only (answers the CNI plugin)
``nicpool-admin``        same name         read and write (nicpoolctl: audit, repair)
=======================  ================  ==========================================

etcd refuses to enable auth without a ``root`` user holding the ``root``
role; setup creates it too (administer with a certificate whose CN is
``root``). Users get a random password nobody keeps: they are meant to log
in with their certificate only.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTROLLER = "nicpool-controller"
AGENT = "nicpool-agent"
ADMIN = "nicpool-admin"
ROOT = "root"


@dataclass(frozen=True)
class Grant:
    """A user, its role (named like the user) and its rights on the prefix."""

    user: str
    write: bool


def grants(*, controller: str = CONTROLLER, agent: str = AGENT, admin: str = ADMIN) -> list[Grant]:
    """The grants nicpool needs, for the given certificate CNs."""
    return [Grant(controller, write=True), Grant(agent, write=False), Grant(admin, write=True)]
