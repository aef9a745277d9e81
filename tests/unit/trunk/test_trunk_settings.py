"""``[trunks.NAME]`` in the config: every mistake is a located error, the allow-list
defaults to the provider's resolved addresses, and a trunk knows its sources."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from b2bua.config import ConfigError, load_config
from b2bua.trunk.settings import Trunk, TrunkSettings

GOOD = """
[trunks.carrier]
host = "sip.provider.example"
register = true
username = "5550200"
password = "provider-secret"
allow = ["198.51.100.0/24", "203.0.113.7"]
did_from = "to"
max_calls = 10
"""

ERRORS = [
    ('[trunks."bad name"]\nhost = "x.example"', "trunks.bad name.[key]",
     "expected a trunk name of 1 to 32 letters, digits, - and _ (starting with a letter "
     "or digit)"),
    ("[trunks.c]\nport = 5060", "trunks.c.host", "Field required"),
    ('[trunks.c]\nhost = "sip..example"', "trunks.c.host",
     "expected a host name or IP address, got 'sip..example'"),
    ('[trunks.c]\nhost = "x.example"\ntransport = "tls"', "trunks.c.transport",
     "'tls': expected udp or tcp (TLS is not built yet)"),
    ('[server]\nlisten = ["udp:127.0.0.1:5060"]\n[trunks.c]\nhost = "x.example"\n'
     'transport = "tcp"', "trunks.c.transport",
     'the switch does not listen on tcp: add "tcp:HOST:PORT" to server.listen'),
    ('[trunks.c]\nhost = "x.example"\nport = 0', "trunks.c.port",
     "Input should be greater than or equal to 1 (got 0)"),
    ('[trunks.c]\nhost = "x.example"\nregister = true', "trunks.c",
     "give username (the account's digest user name); register = true needs password "
     "(or ha1_md5 / ha1_sha256)"),
    ('[trunks.c]\nhost = "x.example"\nusername = "u"\npassword = "p"\nha1_md5 = "'
     + "a" * 32 + '"', "trunks.c",
     "give either a password or an HA1, not both; an HA1 is tied to one realm: give realm "
     "as well"),
    ('[trunks.c]\nhost = "x.example"\nha1_sha256 = "abc"', "trunks.c.ha1_sha256",
     "expected 64 lower-case hex digits"),
    ('[trunks.c]\nhost = "x.example"\nusername = "a b"', "trunks.c.username",
     "expected 1 to 64 characters: letters, digits and -_.!~*'()&=+$,;?/"),
    ('[trunks.c]\nhost = "x.example"\nallow = []', "trunks.c.allow",
     "an empty list would refuse every call from the provider; leave it out to allow the "
     "addresses host resolves to"),
    ('[trunks.c]\nhost = "x.example"\nallow = ["10.0.0.1/8"]', "trunks.c.allow",
     "'10.0.0.1/8': expected an IP address or a network like 203.0.113.0/24 (10.0.0.1/8 "
     "has host bits set)"),
    ('[trunks.c]\nhost = "x.example"\ndid_from = "from"', "trunks.c.did_from",
     "Input should be 'request_uri', 'to' or 'contact' (got 'from')"),
    ('[trunks.c]\nhost = "x.example"\ndid_from = "contact"', "trunks.c",
     'did_from = "contact" needs register = true (it names our contact)'),
    ('[trunks.c]\nhost = "x.example"\nretry_min = 60\nretry_max = 10', "trunks.c",
     "retry_max 10.0 is below retry_min 60.0"),
    ('[trunks.c]\nhost = "x.example"\nregistration = true', "trunks.c.registration",
     "unknown key (not one this version understands)"),
    ('[calls]\nuntrusted_calls = "anyone"', "calls.untrusted_calls",
     "Input should be 'public' or 'refuse' (got 'anyone')"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "location", "message"), ERRORS)
def test_each_trunk_error_names_its_place(
    tmp_path: Path, text: str, location: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [(location, message)]


def test_errors_in_two_trunks_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[trunks.a]\nhost = "a..b"\n[trunks.b]\nhost = "x.example"\nport = -1\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [loc for loc, _ in info.value.errors] == ["trunks.a.host", "trunks.b.port"]


def test_a_good_trunk_and_its_resolved_form(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    settings = load_config(path).trunks["carrier"]
    assert (settings.registration, settings.port, settings.expires) == (True, 5060, 3600)
    trunk = Trunk.resolved("carrier", settings, ["192.0.2.9"])
    assert str(trunk.peer) == "udp:192.0.2.9:5060"
    assert trunk.contact_user == "5550200"
    # The configured allow-list replaces the resolved addresses.
    assert trunk.allows("198.51.100.77")
    assert trunk.allows("203.0.113.7")
    assert not trunk.allows("192.0.2.9")
    assert not trunk.allows("203.0.113.8")
    assert not trunk.allows("not-an-address")


def test_without_allow_the_resolved_addresses_are_the_sources() -> None:
    settings = TrunkSettings.model_validate({"host": "sip.provider.example"})
    trunk = Trunk.resolved("carrier", settings, ["192.0.2.9", "2001:db8::9"])
    assert trunk.networks == (
        ipaddress.ip_network("192.0.2.9/32"),
        ipaddress.ip_network("2001:db8::9/128"),
    )
    assert trunk.allows("2001:db8::9")
    assert not trunk.allows("192.0.2.10")
    with pytest.raises(ValueError, match="resolves to no address"):
        Trunk.resolved("carrier", settings, [])


def test_host_may_be_a_bracketed_ipv6_address() -> None:
    settings = TrunkSettings.model_validate({"host": "[2001:db8::1]"})
    assert settings.host == "2001:db8::1"
