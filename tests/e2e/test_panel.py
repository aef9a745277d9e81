"""The live hunt panel in headless Chromium (Debian ``chromium`` driven through
``chromium-driver`` by Selenium): a customer calls the group through the real switch,
and the page, fed by its server-sent event stream, shows the member ringing for that
call, then answered (busy), then the call among the last calls with its outcome.

The switch wants a bearer token: the page is opened with ``?access_token=`` and passes it
on to its event stream (EventSource cannot send headers), so the test also proves the
token reaches the stream. Chromium and chromedriver are stopped by PID at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.support.audio import write_tone_wav_ulaw
from tests.support.operations import TEAM_DID, customer_call, running, team_config
from tests.support.processes import wait_until
from tests.support.sipp_calls import Callee, report

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("sipp", "chromium", "chromedriver")]

TOKEN: Final = "panel-test-token-0123456789"
CHROMIUM: Final = "/usr/bin/chromium"
CHROMEDRIVER: Final = "/usr/bin/chromedriver"
#: Seconds the page gets to show a change (the stream sends within 0.1 s of it).
SHOWN: Final = 10.0


@contextlib.contextmanager
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    # The driver's path given: Selenium runs it and downloads nothing.
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(5)
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            process = service.process
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def read(driver: webdriver.Chrome, script: str) -> object:
    """Evaluate ``script`` in the page (one call: the page redraws between calls)."""
    return driver.execute_script(script)


def member(driver: webdriver.Chrome, extension: str) -> dict[str, object] | None:
    """State of a member's tile and the calls shown on it."""
    found = read(
        driver,
        f"""
        const tile = document.querySelector('.member[data-member="{extension}"]');
        if (!tile) return null;
        return {{
            state: tile.dataset.state,
            calls: [...tile.querySelectorAll('.call')].map((c) => c.dataset.callState),
        }};
        """,
    )
    assert found is None or isinstance(found, dict)
    return found


def test_the_panel_shows_the_member_ringing_then_answered(tmp_path: Path) -> None:
    write_tone_wav_ulaw(tmp_path / "caller_tone.wav", 1000, 1.0)
    config = team_config('["201", "202"]', extra=f'\n[status]\ntoken = "{TOKEN}"\n')
    with running(tmp_path, config) as switch, browser(tmp_path) as driver:
        assert switch.status_address is not None
        switch.token = TOKEN
        driver.get(f"http://{switch.status_address}/panel?access_token={TOKEN}")
        wait_until(
            lambda: (
                read(driver, "return document.getElementById('connection').dataset.state") == "live"
            ),
            SHOWN,
            "the panel's event stream to connect",
        )
        assert member(driver, "201") == {"state": "unregistered", "calls": []}
        ringer = Callee.start(switch, "201", "call_uas_ring_then_answer.xml",
                              tmp_path)  # fmt: skip
        try:
            wait_until(lambda: member(driver, "201") == {"state": "idle", "calls": []},
                       SHOWN, "201 idle once registered")  # fmt: skip
            assert member(driver, "202") == {"state": "unregistered", "calls": []}
            with customer_call(switch, tmp_path, "customer", 2.0) as customer:
                wait_until(
                    lambda: member(driver, "201") == {"state": "ringing", "calls": ["ringing"]},
                    SHOWN,
                    "201 ringing on the panel",
                )
                row = read(
                    driver,
                    "const r = document.querySelector('#calls tr[data-call]');"
                    "return r && [r.dataset.state, r.cells[1].textContent,"
                    " r.cells[2].textContent, r.cells[4].textContent];",
                )
                assert row == ["ringing", TEAM_DID, "team", "201"], row
                wait_until(
                    lambda: member(driver, "201") == {"state": "busy", "calls": ["answered"]},
                    SHOWN,
                    "201 answered on the panel",
                )
                assert customer.finish() == 0, report(tmp_path)
            assert ringer.finish() == 0, report(tmp_path)
        finally:
            ringer.stop()
        wait_until(lambda: member(driver, "201") == {"state": "idle", "calls": []},
                   SHOWN, "201 idle after the call")  # fmt: skip
        wait_until(
            lambda: (
                read(
                    driver,
                    "const r = document.querySelector('#recent tr[data-disposition]');"
                    "return r && [r.dataset.disposition, r.cells[4].textContent,"
                    " r.querySelector('.trace').textContent];",
                )
                is not None
            ),
            SHOWN,
            "the call among the last calls",
        )
        last = read(
            driver,
            "const r = document.querySelector('#recent tr[data-disposition]');"
            "return [r.dataset.disposition, r.cells[4].textContent,"
            " r.querySelector('.trace').textContent];",
        )
        assert isinstance(last, list)
        disposition, answered, trace = (str(item) for item in last)
        assert (disposition, answered) == ("answered", "201")
        assert "201 answered" in trace
        recent = read(driver, "return document.querySelector('#recent tr').textContent")
        assert isinstance(recent, str)
        assert TEAM_DID in recent
        driver.save_screenshot(str(tmp_path / "panel.png"))
