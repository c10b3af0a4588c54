"""ops/monitoring against the real tools: promtool, and a real Prometheus scraping
real nicpool-controller replicas and a real nicpool-agent.

(The static checks, promtool and the files' shape, are in
``test_monitoring_files``.) The module fixture :func:`scene` starts two controller replicas
and an agent on one etcd prefix against the test kube-apiserver, a Prometheus
scraping them every second with ``alerts.yaml`` loaded, and then makes things
happen that an operator would see: two Subnets (one dual-stack /24 + /120,
one /30 with a single usable address), an IPPool of one address that a pod
then fills, pods that get addresses, pods that are
refused (address outside the Subnet, a NAD without spec), and CNI requests to
the agent (an answered ADD, a DEL, a GC that finds an unknown attachment, an
ADD with no lease, and an ADD that waits 6 s for a lease that never comes).

Every PromQL expression is read out of ``dashboard.json`` and ``alerts.yaml``
(:mod:`tests.support.prometheus`), so a new panel or alert is tested without
being listed here. Each must parse, name only metrics an exporter declares,
and return data: a number, not an empty vector or NaN. The exceptions, with
their reasons, are in :data:`EMPTY_WHEN_HEALTHY` (must be empty) and
:data:`EITHER`; anything not listed there must return data.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ops.lab.cluster import Cluster
from ops.lab.cni import AgentProcess
from ops.lab.controllers import ControllerProcess, wait_for
from ops.lab.etcd import EtcdServer
from ops.lab.examples import seed_nad_config
from ops.lab.kube import ControlPlane
from tests.support.components import missing
from tests.support.prometheus import (
    CONTRACT,
    MONITORING,
    Expression,
    PrometheusServer,
    ScrapeJob,
    alert_expr,
    alerts,
    dashboard_expressions,
    expand_grafana_variables,
    family_of,
    has_numbers,
    load_dashboard,
    load_rules,
    metric_names,
    prometheus_binary,
    rule_expressions,
    variable_queries,
)

pytestmark = pytest.mark.controller

DASHBOARD = load_dashboard()
RULES = load_rules()
ALERTS = alerts(RULES)
EXPRESSIONS = dashboard_expressions(DASHBOARD) + rule_expressions(RULES)

EMPTY_WHEN_HEALTHY = {
    "alert: NicpoolNoLeader": "one replica leads the whole time (promtool tests the firing case)",
    "alert: NicpoolMultipleLeaders": "exactly one replica leads (promtool tests the firing case)",
    "alert: NicpoolLeaderMetricAbsent": "both replicas report nicpool_leader until the last "
    "test stops them (that test expects data)",
    "alert: NicpoolControllerDown": "every replica answers scrapes until the last test stops one "
    "(that test expects data)",
    "alert: NicpoolAgentDown": "the agent answers scrapes until the last test stops it "
    "(that test expects data)",
}
"""Expressions that must be an empty vector in this scene, and why."""

EITHER = {
    "dashboard: Store retries by operation [A]": "nicpool_retries_total{operation} has no series "
    "until a compare-and-swap race is lost or etcd fails, which a healthy run may never do",
}
"""Expressions that may be empty or not: their series exist only after rare events."""

POSITIVE = {
    "dashboard: Allocation errors by reason [A]": "pods are refused again on every retry",
    "dashboard: Allocation errors by reason [B]": "the pod naming a NAD without spec is retried",
    "dashboard: CNI errors by reason [A]": "the agent answers 'no lease' twice, scrapes between",
    "alert: NicpoolAllocationErrors": "refused pods",
}
"""Data that must be above zero here: what an operator must see move, not a flat 0."""


# -- the live scene -------------------------------------------------------------


@dataclass
class Scene:
    prometheus: PrometheusServer
    controllers: list[ControllerProcess]
    agent: AgentProcess
    cluster: Cluster
    namespace: str
    subnet: str
    tiny: str
    pool: str

    def leader(self) -> ControllerProcess:
        return next(c for c in self.controllers if c.is_leader())


def agent_post(sock: Path, path: str, body: dict[str, Any]) -> int:
    """One request to the agent's unix socket, as the kube-ovn plugin sends it."""

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(sock))

    conn = UnixConnection("localhost", timeout=60)
    try:
        payload = json.dumps(body).encode()
        conn.request("POST", path, payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def networks(namespace: str, nad: str) -> dict[str, str]:
    return {"k8s.v1.cni.cncf.io/networks": f"{namespace}/{nad}"}


def nad_config(provider: str) -> str:
    return json.dumps(seed_nad_config(ipam={"provider": provider}))


def start_processes(
    stack: ExitStack, plane: ControlPlane, etcd: EtcdServer, prefix: str
) -> tuple[list[ControllerProcess], AgentProcess, PrometheusServer]:
    binary = prometheus_binary()
    if binary is None:
        missing("prometheus", "install the Debian prometheus package (make deps)")
        raise AssertionError("unreachable")
    controllers = []
    for identity in ("mon-a", "mon-b"):
        process = ControllerProcess(plane.kubeconfig, etcd.endpoint, prefix, identity=identity)
        stack.callback(process.stop)
        controllers.append(process.start())
    agent = AgentProcess(etcd.endpoint, prefix)
    stack.callback(agent.stop)
    agent.start()
    wait_for("a leader", lambda: any(c.is_leader() for c in controllers), 90)
    jobs = [
        ScrapeJob("nicpool-controller", tuple(f"127.0.0.1:{c.metrics_port}" for c in controllers)),
        ScrapeJob("nicpool-agent", (f"127.0.0.1:{agent.metrics_port}",)),
    ]
    prom = PrometheusServer(binary, jobs, rule_files=[MONITORING / "alerts.yaml"])
    stack.callback(prom.stop)
    prom.start()
    prom.wait_targets_up(3)
    return controllers, agent, prom


def create_world(scene: Scene, stack: ExitStack) -> None:
    """Subnets first (Prometheus sees them empty), then pods (the trend turns down)."""
    cluster, ns = scene.cluster, scene.namespace
    octet = int(ns[-4:], 16)
    a, b = 100 + octet % 50, octet // 256
    stack.callback(cluster.delete_cluster_object, "subnets", scene.subnet)
    stack.callback(cluster.delete_cluster_object, "subnets", scene.tiny)
    cluster.create_nad(ns, "mon-net", nad_config(f"mon-net.{ns}"))
    cluster.create_nad(ns, "tiny-net", nad_config(f"tiny-net.{ns}"))
    cluster.create_nad(ns, "no-spec", None)
    cluster.create_subnet(
        scene.subnet,
        protocol="Dual",
        provider=f"mon-net.{ns}",
        cidrBlock=f"10.{a}.{b}.0/24,fd00:{a:x}:{b:x}::/120",
        gateway=f"10.{a}.{b}.1,fd00:{a:x}:{b:x}::1",
    )
    cluster.create_subnet(
        scene.tiny, protocol="IPv4", provider=f"tiny-net.{ns}", cidrBlock=f"10.{a + 50}.{b}.252/30"
    )
    stack.callback(cluster.delete_cluster_object, "ippools", scene.pool)
    pool_ips = [f"10.{a}.{b}.200", f"fd00:{a:x}:{b:x}::c8"]  # one address of each family
    cluster.create_ippool(scene.pool, subnet=scene.subnet, ips=pool_ips)
    for subnet in (scene.subnet, scene.tiny):
        series = f'nicpool_subnet_addresses{{subnet="{subnet}",state="%s"}}'
        untouched = f"{series % 'available'} == ignoring (state) {series % 'total'}"
        scene.prometheus.wait_for_data(f"{subnet} scraped with nothing leased", untouched)
    series = f'nicpool_ippool_addresses{{ippool="{scene.pool}",family="4",state="%s"}}'
    untouched = f"{series % 'available'} == ignoring (state) {series % 'total'} > 0"
    scene.prometheus.wait_for_data(f"{scene.pool} scraped with nothing leased", untouched)
    cluster.create_pod(ns, "good", networks(ns, "mon-net"))
    pooled = {**networks(ns, "mon-net"), f"mon-net.{ns}.kubernetes.io/ip_pool": scene.pool}
    cluster.create_pod(ns, "pooled", pooled)
    cluster.create_pod(ns, "tiny", networks(ns, "tiny-net"))
    outside = {**networks(ns, "mon-net"), f"mon-net.{ns}.kubernetes.io/ip_address": "192.0.2.10"}
    cluster.create_pod(ns, "outside", outside)
    cluster.create_pod(ns, "no-provider", networks(ns, "no-spec"))
    cluster.allocated(ns, "good", f"mon-net.{ns}")
    cluster.allocated(ns, "pooled", f"mon-net.{ns}")
    cluster.allocated(ns, "tiny", f"tiny-net.{ns}")
    wait_for("outside refused", partial(refusals, cluster, ns, "outside"), 60)
    wait_for("no-provider refused", partial(refusals, cluster, ns, "no-provider"), 60)
    assert "NoProvider" in refusals(cluster, ns, "no-provider")


def refusals(cluster: Cluster, namespace: str, pod: str) -> set[str]:
    """Reasons of the Warning events on a pod (the controller refused it)."""
    return {e.reason for e in cluster.events(namespace, pod) if e.type == "Warning"}


def drive_agent(scene: Scene) -> None:
    """What kubelet's plugin calls would do: answered, forgotten, unknown, missing, late."""
    ns, sock = scene.namespace, scene.agent.socket
    good = {"pod_name": "good", "pod_namespace": ns, "provider": f"mon-net.{ns}"}
    good |= {"container_id": "c-good", "if_name": "net1", "net_ns": "/var/run/netns/good"}
    assert agent_post(sock, "/api/v1/add", good) == 200
    assert agent_post(sock, "/api/v1/gc", {"valid_attachments": []}) == 200
    assert agent_post(sock, "/api/v1/add", good) == 200
    assert agent_post(sock, "/api/v1/del", good) == 204
    ghost = {"pod_name": "ghost", "pod_namespace": ns, "provider": f"mon-net.{ns}"}
    assert agent_post(sock, "/api/v1/add", {**ghost, "wait_seconds": 0}) == 404
    # Slow enough for the p99 of the wait histogram to cross NicpoolCNIWaitHigh's 5 s,
    # and long enough for Prometheus to have scraped the series the calls above created:
    # a series first seen at 1 shows no rate, so the calls below are what rates measure.
    assert agent_post(sock, "/api/v1/add", {**ghost, "wait_seconds": 6}) == 504
    assert agent_post(sock, "/api/v1/add", {**ghost, "wait_seconds": 0}) == 404
    assert agent_post(sock, "/api/v1/gc", {"valid_attachments": []}) == 200


@pytest.fixture(scope="module")
def scene(control_plane: ControlPlane, etcd_server: EtcdServer) -> Iterator[Scene]:
    from kubernetes.client import V1Namespace, V1ObjectMeta

    prefix = f"/nicpool-test/monitoring-{uuid.uuid4().hex[:8]}/v1/"
    with ExitStack() as stack:
        controllers, agent, prom = start_processes(stack, control_plane, etcd_server, prefix)
        cluster = Cluster(control_plane.api_client())
        tag = uuid.uuid4().hex[:6]
        namespace = f"mon-{tag}"
        cluster.core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
        stack.callback(cluster.core.delete_namespace, namespace)
        world = Scene(
            prom,
            controllers,
            agent,
            cluster,
            namespace,
            f"mon-{tag}",
            f"mon-tiny-{tag}",
            f"mon-pool-{tag}",
        )
        create_world(world, stack)
        drive_agent(world)
        since = time.time()
        # Two scrapes of every target after the last request: rates see the change.
        prom.wait_for_data("a scrape after the requests", f"min(timestamp(up)) > {since + 1}")
        yield world


def grafana_values(scene: Scene) -> dict[str, str]:
    """What Grafana sends for the dashboard's variables (both test subnets selected)."""
    return {
        "subnet": f"({scene.subnet}|{scene.tiny})",
        "__rate_interval": "5m",
        "__interval": "15s",
        "__range": "5m",
    }


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[e.origin for e in EXPRESSIONS])
def test_expression_evaluates_on_the_live_exporters(scene: Scene, expression: Expression) -> None:
    promql = expand_grafana_variables(expression.promql, grafana_values(scene))
    samples = scene.prometheus.query(promql)
    declared = scene.prometheus.metric_names_with_metadata()
    for name in metric_names(promql) - {"up"}:
        assert family_of(name, declared), f"{name} is exported by no target ({expression.origin})"
    if expression.origin in EMPTY_WHEN_HEALTHY:
        assert samples == [], f"{expression.origin}: {samples}"
    elif expression.origin not in EITHER:
        assert has_numbers(samples), f"{expression.origin}: no data {samples}\n{promql}"
    if expression.origin in POSITIVE:
        assert any(float(s["value"][1]) > 0 for s in samples), f"{expression.origin}: {samples}"


def test_exporters_declare_every_metric_of_the_contract(scene: Scene) -> None:
    declared = scene.prometheus.metric_names_with_metadata()
    assert {name for name in CONTRACT if family_of(name, declared) is None} == set()


def test_subnet_variable_lists_the_subnets(scene: Scene) -> None:
    for query in variable_queries(DASHBOARD):
        values = scene.prometheus.api(f"label/{query.label}/values", **{"match[]": query.selector})
        assert {scene.subnet, scene.tiny} <= set(values)


def test_prometheus_runs_every_rule_and_raises_what_the_scene_provokes(scene: Scene) -> None:
    names = {alert["alert"] for alert in ALERTS}
    provoked = {name for name in names if f"alert: {name}" not in EMPTY_WHEN_HEALTHY}

    def active() -> set[str] | None:
        rules = scene.prometheus.rules()
        assert {rule["name"] for rule in rules} == names
        for rule in rules:
            assert rule["health"] == "ok", rule
        found = {rule["name"] for rule in rules if rule["state"] in ("pending", "firing")}
        return found if found == provoked else None

    wait_for(f"exactly {sorted(provoked)} pending or firing", active, 60, every=0.5)


def test_stopped_exporters_raise_the_down_and_absent_alerts(scene: Scene) -> None:
    prom = scene.prometheus
    leader = scene.leader()
    standby = next(c for c in scene.controllers if c is not leader)
    standby.stop()
    scene.agent.stop()
    down = prom.wait_for_data("controller down", alert_expr(RULES, "NicpoolControllerDown"))
    assert [s["metric"]["instance"] for s in down] == [f"127.0.0.1:{standby.metrics_port}"]
    agent = prom.wait_for_data("agent down", alert_expr(RULES, "NicpoolAgentDown"))
    assert [s["metric"]["instance"] for s in agent] == [f"127.0.0.1:{scene.agent.metrics_port}"]
    leader.stop()
    prom.wait_for_data("no controller at all", alert_expr(RULES, "NicpoolLeaderMetricAbsent"))
