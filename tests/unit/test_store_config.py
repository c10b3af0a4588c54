"""Flags, their environment variables, and etcd settings that cannot work (issue 8 items 3, 16)."""

from __future__ import annotations

import pytest

from reconciler.main import parser as controller_parser
from store.config import ConfigError, EtcdSettings

pytestmark = pytest.mark.unit


def test_https_endpoint_without_a_ca_is_refused_not_downgraded() -> None:
    with pytest.raises(ConfigError, match=r"https://.*no --etcd-cacert.*plaintext"):
        EtcdSettings(endpoints=("https://etcd.example:2379",))


def test_a_ca_with_http_endpoints_is_refused() -> None:
    with pytest.raises(ConfigError, match="https:// endpoints"):
        EtcdSettings(endpoints=("http://127.0.0.1:2379",), cacert="/ca.pem")


def test_a_client_cert_needs_its_key() -> None:
    with pytest.raises(ConfigError, match="together"):
        EtcdSettings(endpoints=("https://127.0.0.1:2379",), cacert="/ca.pem", cert="/c.pem")


def test_tls_settings_that_fit_are_accepted() -> None:
    settings = EtcdSettings(
        endpoints=("https://127.0.0.1:2379",), cacert="/ca.pem", cert="/c.pem", key="/k.pem"
    )
    assert settings.hosts() == [("127.0.0.1", 2379)]


def test_environment_values_are_converted_like_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NICPOOL_WORKERS", "7")
    monkeypatch.setenv("NICPOOL_GC_GRACE", "2.5")
    args = controller_parser().parse_args([])
    assert args.workers == 7 and args.gc_grace == 2.5
    assert controller_parser().parse_args(["--workers", "3"]).workers == 3


@pytest.mark.parametrize(
    ("env", "value"),
    [("NICPOOL_WORKERS", "abc"), ("NICPOOL_WORKERS", "0"), ("NICPOOL_ELECTION_TTL", "1.5")],
)
def test_a_bad_environment_value_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SystemExit) as exited:
        controller_parser().parse_args([])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert env in err and repr(value) in err
    assert "Traceback" not in err


def test_the_agent_reports_a_bad_environment_value_as_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnibin.agent.main import parse_args

    monkeypatch.setenv("NICPOOL_LEASE_WAIT", "-3")
    with pytest.raises(SystemExit) as exited:
        parse_args([])
    assert exited.value.code == 2
    assert "NICPOOL_LEASE_WAIT" in capsys.readouterr().err
    monkeypatch.setenv("NICPOOL_LEASE_WAIT", "2.5")
    assert parse_args([]).lease_wait == 2.5
