"""A NAD's config -> the provider, exactly where the CNI plugin reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import InvalidNadConfig, NadNoProvider
from reconciler.core.nadconfig import nad_provider
from store.errors import PermanentError

pytestmark = pytest.mark.unit

SEED_MACVLAN = """{
      "cniVersion": "0.3.0",
      "type": "macvlan",
      "master": "eth0",
      "mode": "bridge",
      "ipam": {
        "type": "kube-ovn",
        "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
        "provider": "macvlan.default"
      }
    }"""
SEED_ATTACHNET = """{
      "cniVersion": "0.3.0",
      "type": "kube-ovn",
      "server_socket": "/run/openvswitch/kube-ovn-daemon.sock",
      "provider": "attachnet.default.ovn"
    }"""


def test_seed_macvlan_nad_is_ipam_for_macvlan_default() -> None:
    found = nad_provider("default", "macvlan", SEED_MACVLAN)
    assert found is not None
    assert (found.provider, found.kind, found.defaulted) == ("macvlan.default", "ipam", False)


def test_seed_attachnet_nad_is_a_kube_ovn_nic() -> None:
    found = nad_provider("default", "attachnet", SEED_ATTACHNET)
    assert found is not None
    assert (found.provider, found.kind) == ("attachnet.default.ovn", "ovn")


@pytest.mark.parametrize(
    ("config", "provider", "kind"),
    [
        ({"type": "macvlan", "ipam": {"type": "kube-ovn"}}, "net.team", "ipam"),
        ({"type": "kube-ovn"}, "net.team.ovn", "ovn"),
        ({"type": "bridge", "ipam": {"type": "kube-ovn", "provider": "  "}}, "net.team", "ipam"),
    ],
)
def test_missing_provider_defaults_to_kube_ovn_controller_naming(
    config: dict, provider: str, kind: str
) -> None:
    found = nad_provider("team", "net", json.dumps(config))
    assert found is not None
    assert (found.provider, found.kind, found.defaulted) == (provider, kind, True)


def test_conflist_uses_the_first_kube_ovn_plugin() -> None:
    config = {
        "cniVersion": "1.0.0",
        "name": "chain",
        "plugins": [
            {"type": "tuning"},
            {"type": "bridge", "ipam": {"type": "kube-ovn", "provider": "chain.team"}},
            {"type": "portmap"},
        ],
    }
    found = nad_provider("team", "chain", json.dumps(config))
    assert found is not None and found.provider == "chain.team"


@pytest.mark.parametrize(
    "config",
    [
        {"type": "macvlan", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"}},
        {"type": "macvlan"},
        {"plugins": [{"type": "bridge", "ipam": {"type": "whereabouts"}}]},
    ],
)
def test_configs_without_kube_ovn_are_not_ours(config: dict) -> None:
    assert nad_provider("team", "net", json.dumps(config)) is None


@pytest.mark.parametrize("config", [None, "", "   "])
def test_empty_spec_has_no_provider(config: str | None) -> None:
    with pytest.raises(NadNoProvider, match="empty spec") as caught:
        nad_provider("default", "macvlan-conf-2", config)
    assert caught.value.reason == "NoProvider"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"plugins": {"type": "x"}}', "list of objects"),
        ('{"type": "macvlan", "ipam": "kube-ovn"}', "'ipam' must be an object"),
        ('{"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": 7}}', "must be a string"),
        ('{"type": "kube-ovn", "provider": "ovn"}', "cluster network"),
        ('{"type": "macvlan", "ipam": {"type": "kube-ovn", "provider": "a b"}}', "spaces"),
    ],
)
def test_undecodable_or_wrong_configs_are_refused(config: str, message: str) -> None:
    with pytest.raises(InvalidNadConfig, match=message):
        nad_provider("default", "net", config)


@given(st.text(max_size=80))
def test_any_config_text_gives_a_provider_none_or_a_permanent_error(config: str) -> None:
    try:
        found = nad_provider("default", "net", config)
    except PermanentError as exc:
        assert exc.reason in {"NoProvider", "InvalidNetworkAttachmentDefinition"}
    else:
        assert found is None or found.provider
