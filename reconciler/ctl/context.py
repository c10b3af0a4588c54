"""What every command gets: parsed flags, output streams, and lazily opened clients.

Clients open on first use, so ``nicpoolctl usage`` never needs a
kubeconfig and ``audit --no-kube`` works on a machine that has none.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from reconciler.kube.client import KubeClient
from store.config import EtcdSettings, etcd_settings_from_args
from store.etcd import EtcdClient, connect

EXIT_OK = 0
EXIT_FINDINGS = 1
"""Audit findings, rebuild conflicts, a refused release, a lease not found."""
EXIT_USAGE = 2
"""Bad flags or bad input (argparse's own code too)."""
EXIT_UNAVAILABLE = 3
"""etcd or the apiserver could not be reached (temporary: try again)."""


class CtlError(Exception):
    """A refusal or bad input, reported as one line on stderr with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _etcd: EtcdClient | None = None
    _kube: KubeClient | None = None

    @property
    def settings(self) -> EtcdSettings:
        return etcd_settings_from_args(self.args)

    @property
    def prefix(self) -> str:
        return self.settings.prefix

    def etcd(self) -> EtcdClient:
        if self._etcd is None:
            self._etcd = connect(self.settings)
        return self._etcd

    def kube(self) -> KubeClient:
        if self._kube is None:
            # Imported here: the Kubernetes client costs a second at start-up,
            # and most commands never talk to the apiserver.
            from reconciler.kube.config import kube_client

            try:
                self._kube = kube_client(self.args.kubeconfig or None)
            except Exception as exc:  # the kubeconfig loader raises several kinds
                raise CtlError(f"cannot load kubeconfig: {exc}", EXIT_UNAVAILABLE) from exc
        return self._kube

    def close(self) -> None:
        if self._etcd is not None:
            self._etcd.close()
        if self._kube is not None:
            self._kube.close()

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def print_json(self, doc: Any) -> None:
        json.dump(doc, self.out, indent=2, sort_keys=False)
        self.out.write("\n")

    def warn(self, text: str) -> None:
        print(f"nicpoolctl: {text}", file=self.err)
