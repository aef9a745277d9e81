"""Real phones register to the switch: baresip (MD5, as configs/example.toml offers out
of the box), linphonec with SHA-256, and linphonec retrying silently on a stale nonce."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    LinphoneAccount,
    LinphoneFactory,
    baresip_factory,
    linphone_factory,
)
from tests.support.processes import SwitchFactory, log_events, wait_until

__all__ = ["baresip_factory", "linphone_factory"]

pytestmark = pytest.mark.e2e

EXAMPLE: Final = Path(__file__).resolve().parents[2] / "configs" / "example.toml"


@pytest.mark.requires_tool("baresip")
def test_baresip_registers_to_the_example_config_out_of_the_box(
    switch_factory: SwitchFactory, baresip_factory: BaresipFactory
) -> None:
    switch = switch_factory(EXAMPLE.read_text(), ("udp", "tcp"))
    phone = baresip_factory(
        [BaresipAccount("0101", switch.udp, password="change-me-0101", regint=600)]
    )
    phone.wait_registered(10)
    [binding] = switch.status()["registrations"]["0101"]
    assert binding["source"] == f"udp:127.0.0.1:{phone.sip_port}"
    assert switch.status()["extensions"]["0101"] == {
        "name": "Front desk",
        "registered": True,
        "dnd": False,
    }
    [registered] = log_events(switch, "registered")
    assert registered["algorithm"] == "MD5"


@pytest.mark.requires_tool("linphonec")
def test_linphonec_registers_with_sha256(
    switch_factory: SwitchFactory, linphone_factory: LinphoneFactory
) -> None:
    config = EXAMPLE.read_text().replace('algorithms = ["MD5"]', 'algorithms = ["SHA-256", "MD5"]')
    assert 'algorithms = ["SHA-256", "MD5"]' in config
    switch = switch_factory(config, ("udp",))
    phone = linphone_factory(LinphoneAccount("0102", switch.udp, password="change-me-0102"))
    phone.wait_registered(10)
    wait_until(lambda: bool(log_events(switch, "registered")), 5, "the registration")
    assert log_events(switch, "registered")[0]["algorithm"] == "SHA-256"
    [binding] = switch.status()["registrations"]["0102"]
    assert binding["source"].startswith("udp:127.0.0.1:")
    assert phone.password_prompts == 0


@pytest.mark.requires_tool("linphonec")
def test_a_stale_nonce_makes_a_real_phone_retry_silently(
    switch_factory: SwitchFactory, linphone_factory: LinphoneFactory
) -> None:
    config = (
        EXAMPLE.read_text()
        .replace("min_expires = 60", "min_expires = 10")
        .replace("nonce_lifetime = 300", "nonce_lifetime = 10")
    )
    switch = switch_factory(config, ("udp",))
    phone = linphone_factory(
        LinphoneAccount("0103", switch.udp, password="change-me-0103", expires=14)
    )
    phone.wait_registered(10)
    # linphonec refreshes before the 14 s run out, reusing its nonce, which is older
    # than 10 s by then: the switch says stale=true and the phone retries at once.
    wait_until(lambda: bool(log_events(switch, "nonce_stale")), 20, "a stale nonce")
    stale_at = log_events(switch, "nonce_stale")[0]["timestamp"]
    wait_until(
        lambda: any(r["timestamp"] > stale_at for r in log_events(switch, "registered")),
        5,
        "the silent re-registration",
    )
    assert phone.password_prompts == 0
    assert not log_events(switch, "auth_failed")
    assert switch.status()["extensions"]["0103"]["registered"] is True
