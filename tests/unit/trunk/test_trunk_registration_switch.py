"""A registration trunk inside the switch, on a virtual clock: the REGISTER goes out at
start in a client transaction to the provider, the challenge is answered, /status says
registered, a provider that stops answering shows as failing, and a clean stop
un-REGISTERs."""

from __future__ import annotations

from b2bua.events import StateLoaded, Stopping
from b2bua.sip.digest import Algorithm, make_challenges
from b2bua.sip.message import Request, Response, make_response
from b2bua.trunk.settings import Trunk, TrunkSettings
from tests.unit.call.harness import Net, Phone

PROVIDER = "198.51.100.200"


def registration_net() -> tuple[Net, Phone]:
    settings = TrunkSettings.model_validate(
        {
            "host": PROVIDER,
            "register": True,
            "username": "5550200",
            "password": "provider-secret",
            "expires": 600,
            "keepalive": 0,
            "retry_min": 4,
            "retry_max": 4,
        }
    )
    net = Net(trunks={"carrier": Trunk.resolved("carrier", settings, [PROVIDER])})
    provider = net.outsider(PROVIDER, port=5060)
    return net, provider


def registration(net: Net) -> dict[str, object]:
    state = net.switch.snapshot(net.now)["trunks"]["carrier"]["registration"]
    assert isinstance(state, dict)
    return state


def stopped(net: Net) -> bool:
    return net.switch.trunks_stopped


def response_to(request: Request, status: int, *headers: tuple[str, str]) -> Response:
    response = make_response(request, status, to_tag="prov-1")
    for name, value in headers:
        response.headers.add(name, value)
    return response


def test_register_at_start_answer_the_challenge_and_show_registered() -> None:
    net, provider = registration_net()
    net.feed(StateLoaded(bindings=()))
    first = provider.take_request("REGISTER")
    assert first.uri == f"sip:{PROVIDER}"
    assert first.headers.get("authorization") is None
    # 401 with a challenge.
    (www,) = make_challenges("provider.test", "nonce-1", None, [Algorithm.MD5], False)
    provider.send(response_to(first, 401, ("WWW-Authenticate", www)))
    second = provider.take_request("REGISTER")
    assert second.cseq.number == first.cseq.number + 1
    assert second.call_id == first.call_id
    assert 'username="5550200"' in (second.headers.get("authorization") or "")
    contact = second.headers.get("contact") or ""
    assert contact.endswith(";expires=600")
    provider.send(response_to(second, 200, ("Contact", contact)))
    assert registration(net)["state"] == "registered"
    # The refresh: a minute before the grant runs out, counted from the send.
    net.run_until(539.0)
    provider.assert_nothing()
    net.run_until(540.0)
    refresh = provider.take_request("REGISTER")
    assert refresh.cseq.number == second.cseq.number + 1


def test_a_provider_that_never_answers_shows_failing_and_the_stop_still_unregisters() -> None:
    net, provider = registration_net()
    net.feed(StateLoaded(bindings=()))
    provider.take_request("REGISTER")
    net.run_until(40.0)  # Timer F (64 x T1 = 32 s) ends the transaction
    state = registration(net)
    assert state["state"] == "failing"
    assert state["last_status"] == 408
    assert not stopped(net)
    retry = provider.take_request("REGISTER")  # the back-off's retry, 4 s later
    assert retry.headers.get("expires") == "600"
    # A REGISTER may have reached it: the stop says goodbye anyway (Expires 0).
    net.feed(Stopping())
    goodbye = provider.take_request("REGISTER")
    assert goodbye.headers.get("expires") == "0"
    assert not stopped(net)
    provider.send(response_to(goodbye, 200))
    assert stopped(net)
    assert registration(net)["state"] == "stopped"
