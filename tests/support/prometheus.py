"""A real Prometheus for the monitoring tests, and the PromQL our ops files hold.

:class:`PrometheusServer` runs the machine's ``prometheus`` (Debian 2.42) on
127.0.0.1 with a throw-away storage directory and a generated config that
scrapes the given targets every second and loads ``ops/monitoring/alerts.yaml``.
Queries go through the HTTP API (``/api/v1/query``), exactly as Grafana and
Alertmanager users' tools would send them.

The second half reads every PromQL expression out of the dashboard and the
rule file, so a panel or alert added later is tested without anyone listing
it: :func:`dashboard_expressions` walks panels (rows included) and template
variables, :func:`rule_expressions` walks rule groups, and
:func:`expand_grafana_variables` replaces the dashboard's ``$variables`` with
what Grafana would send, refusing any variable it does not know.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.lab.binaries import find_binary
from ops.lab.ports import free_port
from ops.lab.processes import terminate

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "ops" / "monitoring"


def prometheus_binary() -> Path | None:
    return find_binary("prometheus")


def promtool_binary() -> Path | None:
    return find_binary("promtool")


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS`` from the monitoring directory (rule files name each other relatively)."""
    binary = promtool_binary()
    assert binary is not None, "promtool is not installed"
    return subprocess.run(
        [str(binary), *args],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[str, ...]
    """``host:port`` of each exporter (loopback only)."""


class QueryError(RuntimeError):
    """Prometheus refused a query (parse error, bad range, ...)."""


@dataclass
class PrometheusServer:
    """One Prometheus on a loopback port; :meth:`stop` also removes its storage."""

    binary: Path
    jobs: Sequence[ScrapeJob]
    rule_files: Sequence[Path] = ()
    interval: str = "1s"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="nicpool-prom-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def config(self) -> dict[str, Any]:
        for job in self.jobs:
            for target in job.targets:
                assert target.startswith("127.0.0.1:"), f"{target}: tests scrape loopback only"
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": job.name,
                    "scrape_timeout": self.interval,
                    "static_configs": [{"targets": list(job.targets)}],
                }
                for job in self.jobs
            ],
        }

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        args = [
            str(self.binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        terminate(self.process, grace=20)
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP API ------------------------------------------------------------

    def api(self, path: str, **params: str | Sequence[str]) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` member, or :class:`QueryError`."""
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as resp:
                doc = json.load(resp)
        except urllib.error.HTTPError as error:
            doc = json.loads(error.read() or b"{}")
        if doc.get("status") != "success":
            raise QueryError(f"{doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at "now"; the vector's samples (scalars as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] != "vector":
            raise QueryError(f"{expr}: unexpected result type {data['resultType']}")
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for_data(self, what: str, expr: str, timeout: float = 90.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it returns a number; its samples. Fails naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            samples = self.query(expr)
            if has_numbers(samples):
                return samples
            time.sleep(0.5)
        raise AssertionError(f"no data for {what} after {timeout}s: {expr}")

    def wait_targets_up(self, count: int, timeout: float = 60.0) -> None:
        """Discovery applies a new config after ~5 s; then every target must answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = [target["health"] for target in self.active_targets()]
            if health == ["up"] * count:
                return
            time.sleep(0.5)
        raise AssertionError(f"targets not all up after {timeout}s: {self.active_targets()}")

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return targets

    def metric_names_with_metadata(self) -> set[str]:
        """Metric families the scraped exporters declare (``# TYPE``), samples or not."""
        return set(self.api("metadata"))

    def rules(self) -> list[dict[str, Any]]:
        groups = self.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]


def has_numbers(samples: list[dict[str, Any]]) -> bool:
    """At least one sample whose value is a number (``histogram_quantile`` of nothing is NaN)."""
    return any(sample["value"][1] not in ("NaN", "+Inf", "-Inf") for sample in samples)


# -- expressions in the ops files ---------------------------------------------

CONTRACT = {
    "nicpool_subnet_addresses",
    "nicpool_ippool_addresses",
    "nicpool_allocation_seconds",
    "nicpool_allocation_errors_total",
    "nicpool_retries_total",
    "nicpool_queue_depth",
    "nicpool_leader",
    "nicpool_leader_changes_total",
    "nicpool_workflow_resumes_total",
    "nicpool_nad_errors_total",
    "nicpool_cni_request_seconds",
    "nicpool_cni_wait_seconds",
    "nicpool_cni_errors_total",
    "nicpool_cni_unknown_attachments_total",
}
"""The metric names the controller, store and agent promise (issue 5, Observability)."""


@dataclass(frozen=True)
class Expression:
    origin: str
    """Where it lives: ``dashboard: <panel title> [<refId>]`` or ``alert: <name>``."""
    promql: str


def load_dashboard(path: Path = MONITORING / "dashboard.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def load_rules(path: Path = MONITORING / "alerts.yaml") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def dashboard_expressions(dashboard: Mapping[str, Any]) -> list[Expression]:
    """Every ``expr`` of every panel target (hidden ones too), in dashboard order."""
    found = []
    for panel in _panels(list(dashboard.get("panels") or [])):
        for target in panel.get("targets") or []:
            if "expr" in target:
                origin = f"dashboard: {panel.get('title', '?')} [{target.get('refId', '?')}]"
                found.append(Expression(origin, str(target["expr"])))
    return found


LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True)
class LabelValuesQuery:
    """A Grafana ``label_values(selector, label)`` template variable query."""

    variable: str
    selector: str
    label: str


def variable_queries(dashboard: Mapping[str, Any]) -> list[LabelValuesQuery]:
    """Query-type template variables; any other query syntax is an error to fix here."""
    found = []
    for var in (dashboard.get("templating") or {}).get("list") or []:
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = LABEL_VALUES.match(text)
        if match is None:
            raise ValueError(f"variable {var.get('name')}: unsupported query {text!r}")
        found.append(LabelValuesQuery(str(var["name"]), match["selector"], match["label"]))
    return found


def alerts(rules: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def alert_expr(rules: Mapping[str, Any], name: str) -> str:
    return next(str(rule["expr"]) for rule in alerts(rules) if rule["alert"] == name)


def rule_expressions(rules: Mapping[str, Any]) -> list[Expression]:
    found = []
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            kind = "alert" if "alert" in rule else "record"
            found.append(Expression(f"{kind}: {rule[kind]}", str(rule["expr"])))
    return found


GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def expand_grafana_variables(expr: str, values: Mapping[str, str]) -> str:
    """Replace ``$name``, ``${name}``, ``${name:fmt}`` and ``[[name]]``; unknown names raise."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return GRAFANA_VARIABLE.sub(replace, expr)


METRIC_NAME = re.compile(r"\b(nicpool_[A-Za-z0-9_]+|up)\b(?!\s*\()")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def metric_names(promql: str) -> set[str]:
    """Metric names an expression selects: ``nicpool_*`` and ``up``.

    Label names (``by (...)``, ``on (...)``) never start with ``nicpool_``,
    and ``up`` is only ever a metric in our files, so a regex is enough.
    """
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', promql)
    return set(METRIC_NAME.findall(without_strings))


def family_of(name: str, declared: set[str]) -> str | None:
    """The declared family of a series (histogram parts, a counter's ``_total``, map to it)."""
    if name in declared:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in declared:
            return name[: -len(suffix)]
    return None
