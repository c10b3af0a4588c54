"""nicpoolctl against a real etcd: usage, leases, lease show, release, backup/restore.

The CLI runs as a subprocess (``tests/support/ctl.py``), configured through
the same environment variables an operator would set, and the tests read
what it prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from store.core.ops import Put
from store.etcd import EtcdClient
from tests.support.ctl import PROVIDER, Ctl, allocate, register

pytestmark = pytest.mark.store


@pytest.fixture
def populated(client: EtcdClient, etcd_prefix: str) -> EtcdClient:
    """Two subnets (one dual stack, with excludeIps) and four pod NICs."""
    register(client, etcd_prefix, "net1", "10.10.0.0/24", exclude_ips=["10.10.0.200..10.10.0.209"])
    register(client, etcd_prefix, "dual", "10.20.0.0/28,fd00:20::/120", provider="dual.default")
    allocate(client, etcd_prefix, "web-0", "net1", ips=["10.10.0.5"])
    allocate(client, etcd_prefix, "web-1", "net1")
    allocate(client, etcd_prefix, "db-0", "net1", namespace="prod")
    allocate(client, etcd_prefix, "web-0", "dual", provider="dual.default")
    return client


def test_usage_reports_totals_and_a_bar_per_subnet_and_family(ctl: Ctl, populated: Any) -> None:
    found = ctl.json("usage")["subnets"]
    by_key = {(s["subnet"], s["family"]): s for s in found}
    # /24: 256 - network - broadcast - gateway - 10 excluded = 243.
    assert by_key[("net1", 4)] == {
        "subnet": "net1", "family": 4, "cidr": "10.10.0.0/24",
        "total": 243, "used": 3, "available": 240, "excluded": 10,
    }  # fmt: skip
    assert by_key[("dual", 4)]["total"] == 13 and by_key[("dual", 4)]["used"] == 1
    assert by_key[("dual", 6)]["total"] == 254 and by_key[("dual", 6)]["used"] == 1

    text = ctl.run("usage")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "SUBNET", "FAMILY", "CIDR", "TOTAL", "USED", "AVAILABLE", "EXCLUDED", "USAGE",
    ]  # fmt: skip
    net1 = next(line for line in lines if line.startswith("net1"))
    assert "IPv4" in net1 and "[#" in net1 and "1.2%" in net1
    assert sum(line.startswith("dual") for line in lines) == 2


def test_usage_of_an_empty_prefix_says_so(ctl: Ctl) -> None:
    done = ctl.run("usage")
    assert done.returncode == 0
    assert "no subnets registered" in done.stdout


def test_leases_filter_by_subnet_pod_and_provider(ctl: Ctl, populated: Any) -> None:
    def ips(*args: str) -> list[str]:
        return sorted(lease["ip"] for lease in ctl.json("leases", *args)["leases"])

    assert len(ips()) == 5  # 3 in net1, 2 (v4+v6) in dual
    assert ips("--subnet", "net1") == ["10.10.0.2", "10.10.0.3", "10.10.0.5"]
    assert ips("--pod", "default/web-0") == ["10.10.0.5", "10.20.0.2", "fd00:20::2"]
    assert ips("--pod", "prod/db-0") == ["10.10.0.3"]
    assert ips("--provider", "dual.default") == ["10.20.0.2", "fd00:20::2"]
    assert ips("--pod", "web-1", "--provider", PROVIDER) == ["10.10.0.2"]
    table = ctl.run("leases", "--subnet", "net1").stdout
    assert "prod/db-0" in table and "10.10.0.5" in table


def test_lease_show_finds_the_subnet_of_an_address(ctl: Ctl, populated: Any) -> None:
    shown = ctl.json("lease", "show", "fd00:20:0::2")
    assert shown["subnet"] == "dual"
    assert (shown["namespace"], shown["pod"]) == ("default", "web-0")
    assert sorted(shown["attachment_ips"]) == ["10.20.0.2", "fd00:20::2"]
    text = ctl.run("lease", "show", "10.10.0.5").stdout
    assert "default/web-0" in text and "net1" in text


def test_lease_show_of_a_free_or_bad_address(ctl: Ctl, populated: Any) -> None:
    free = ctl.run("lease", "show", "10.10.0.77")
    assert free.returncode == 1
    assert "10.10.0.77 is not leased" in free.stderr and "net1 (10.10.0.0/24)" in free.stderr
    bad = ctl.run("lease", "show", "10.10.0.300")
    assert bad.returncode == 2
    assert "not an IP address" in bad.stderr


def test_release_frees_every_address_of_the_nic(ctl: Ctl, populated: Any) -> None:
    done = ctl.run("release", "10.20.0.2", "--force", "--no-kube")
    assert done.returncode == 0, done.stderr
    assert "released 10.20.0.2,fd00:20::2" in done.stdout
    usage = {(s["subnet"], s["family"]): s["used"] for s in ctl.json("usage")["subnets"]}
    assert usage[("dual", 4)] == 0 and usage[("dual", 6)] == 0
    assert ctl.run("lease", "show", "fd00:20::2").returncode == 1
    assert ctl.json("audit", "--no-kube")["ok"] is True


def test_release_without_a_reachable_apiserver_refuses_unless_forced(
    ctl: Ctl, populated: Any, tmp_path: Path
) -> None:
    missing = Ctl(ctl.endpoint, ctl.prefix, kubeconfig=str(tmp_path / "no-such-kubeconfig"))
    done = missing.run("release", "10.10.0.5")
    assert done.returncode == 3
    assert "kubeconfig" in done.stderr
    assert ctl.json("lease", "show", "10.10.0.5")["pod"] == "web-0"
    # --force without an answer about the pod marks it: the address stays held
    # until the controller sees the pod gone (issue 8 item 15).
    forced = missing.run("release", "10.10.0.5", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "marked 10.10.0.5" in forced.stdout
    shown = ctl.json("lease", "show", "10.10.0.5")
    assert shown["pod"] == "web-0" and shown["release_requested"] is True


def test_backup_then_restore_into_an_empty_prefix_reproduces_usage_and_audit(
    ctl: Ctl, populated: Any, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.json"
    assert ctl.run("backup", "-o", str(backup)).returncode == 0
    doc = json.loads(backup.read_text())
    assert doc["format"] == "nicpool-backup" and doc["version"] == 1
    spec = next(e for e in doc["keys"] if e["key"] == "subnets/net1/spec")
    assert spec["json"]["cidrBlock"] == "10.10.0.0/24"  # readable, not base64

    copy = ctl.with_prefix(ctl.prefix.replace("/v1/", "/restored/v1/"))
    done = copy.run("restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert f"restored {len(doc['keys'])} keys" in done.stdout
    assert copy.json("usage") == ctl.json("usage")
    assert copy.run("usage").stdout == ctl.run("usage").stdout
    assert copy.json("audit", "--no-kube") == ctl.json("audit", "--no-kube")
    assert copy.json("leases") == ctl.json("leases")


def test_restore_refuses_a_prefix_that_holds_anything(
    ctl: Ctl, populated: Any, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.json"
    backup.write_text(ctl.run("backup").stdout)
    before = ctl.json("leases")
    done = ctl.run("restore", str(backup))
    assert done.returncode == 1
    assert "refusing to restore" in done.stderr and "empty prefix" in done.stderr
    assert ctl.json("leases") == before


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "Expecting value"),
        ('{"format": "something-else"}', "not a nicpool backup"),
        ('{"format": "nicpool-backup", "version": 99}', "version 99"),
        (
            '{"format": "nicpool-backup", "version": 1, "store_format": "1",'
            ' "keys": [{"key": "/abs", "text": "x"}]}',
            "bad key entry",
        ),
        (
            '{"format": "nicpool-backup", "version": 1, "store_format": "1",'
            ' "keys": [{"key": "format", "base64": "***"}]}',
            "bad value for key",
        ),
    ],
)
def test_restore_rejects_a_bad_document_and_writes_nothing(
    ctl: Ctl, client: EtcdClient, tmp_path: Path, document: str, message: str
) -> None:
    done = ctl.run("restore", "-", stdin=document)
    assert done.returncode == 2
    assert message in done.stderr
    assert client.count_prefix(ctl.prefix) == 0


def test_unreachable_etcd_is_exit_3_with_a_message(tmp_path: Path) -> None:
    done = Ctl("http://127.0.0.1:9", "/nicpool/v1/").run("usage")
    assert done.returncode == 3
    assert "unavailable" in done.stderr


def test_restore_skips_election_keys(ctl: Ctl, client: EtcdClient) -> None:
    """Issue 8 item 3: an election key restored without its etcd lease would stand
    in the line of candidates forever (a hand-edited or foreign backup may carry one)."""
    document = json.dumps(
        {
            "format": "nicpool-backup",
            "version": 1,
            "store_format": "1",
            "keys": [
                {"key": "format", "text": "1"},
                {"key": "election/00000000deadbeef", "text": "impostor"},
            ],
        }
    )
    done = ctl.run("restore", "-", stdin=document)
    assert done.returncode == 0, done.stderr
    assert "restored 1 keys" in done.stdout
    assert "skipped 1 election key" in done.stderr
    assert client.get_prefix(f"{ctl.prefix}election/")[0] == []


def test_backup_of_more_keys_than_one_grpc_response_holds(
    ctl: Ctl, client: EtcdClient, tmp_path: Path
) -> None:
    """Issue 8 item 5: the backup's keys-only listing of ~60k keys was one unpaged
    read, over gRPC's 4 MiB response limit."""
    name = "k" * 60
    for start in range(0, 60_000, 128):
        client.txn(
            [], [Put(f"{ctl.prefix}bulk/{name}{n:08d}", b"x") for n in range(start, start + 128)]
        )
    backup = tmp_path / "backup.json"
    done = ctl.run("backup", "-o", str(backup))
    assert done.returncode == 0, done.stderr
    assert len(json.loads(backup.read_text())["keys"]) == 60_032
