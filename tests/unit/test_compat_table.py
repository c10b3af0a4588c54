"""The README's Kube-OVN compatibility table stays complete and its counts true.

Every ``spec`` and ``status`` field the ``kubeovn.io`` CRDs of ops/deploy/crds
declare (Kube-OVN's fields, field for field) must have a row saying what
nicpool does with it, each row's status must be one of the three words, and
the counts written above the table must be the table's.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
STATUSES = {"supported", "differs", "n/a"}


def table() -> list[tuple[str, str, str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Kube-OVN compatibility", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("object", "---"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def crd_fields() -> set[tuple[str, str]]:
    found = set()
    for path in sorted((REPO / "ops" / "deploy" / "crds").glob("*.kubeovn.io.yaml")):
        crd = yaml.safe_load(path.read_text())
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        for part in ("spec", "status"):
            for field in schema.get(part, {}).get("properties", {}):
                found.add((kind, f"{part}.{field}"))
    return found


def test_every_kube_ovn_crd_field_has_a_row() -> None:
    rows = {(kind, cell.strip("`")) for kind, cell, _ in table()}
    assert crd_fields() - rows == set()


def test_every_row_has_one_of_the_three_statuses_and_no_row_twice() -> None:
    rows = table()
    assert {status for _, _, status in rows} <= STATUSES
    keys = [(kind, cell) for kind, cell, _ in rows]
    assert len(keys) == len(set(keys))


def test_the_counts_above_the_table_are_the_table_s() -> None:
    text = (REPO / "README.md").read_text()
    counts = Counter(status for _, _, status in table())
    written = re.search(r"Counts: (\d+) supported, (\d+) differs, (\d+) n/a \((\d+) rows\)", text)
    assert written is not None
    supported, differs, na, total = map(int, written.groups())
    assert (supported, differs, na, total) == (
        counts["supported"],
        counts["differs"],
        counts["n/a"],
        sum(counts.values()),
    )
