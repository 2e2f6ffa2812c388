"""End to end: `python app.py` in a real browser (Debian's headless Chromium, driven by Playwright).

The app runs as its own process on 127.0.0.1 with the shipped model, under a guard that reports any connection or
name lookup that is not loopback; the browser must load nothing but the app. The test uploads a generated page,
reads the numbers on the page, corrects a digit, drops a box, saves a screenshot, and saves the page into the
dataset, whose label file it checks.
"""

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright

import app
from digitdet import collect, runtime
from digitdet.detector import DEFAULT_WEIGHTS, Detector
from digitdet.labels import label_path, load_dataset, read_labels

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; .ci/run installs it (Playwright's own download does not work here)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
CONF = 0.25  # the app's default, with the shipped model: a real model reads real digits
TIMEOUT_MS = 90_000  # a busy two-core machine

# Runs app.py's command line with every non-loopback connection and name lookup refused and reported.
GUARDED_APP = textwrap.dedent("""
    import runpy, socket, sys
    LOCAL = {"127.0.0.1", "localhost", "::1", None}
    def guard(name, original, host_of):
        def checked(*args, **kwargs):
            host = host_of(*args)
            if host not in LOCAL:
                print(f"NETWORK ATTEMPT {name} {host!r}", file=sys.stderr, flush=True)
                raise OSError(f"network access attempted: {name} {host!r}")
            return original(*args, **kwargs)
        return checked
    address_host = lambda sock, address, *_: address[0] if isinstance(address, tuple) else None  # None: a unix socket
    socket.socket.connect = guard("connect", socket.socket.connect, address_host)
    socket.socket.connect_ex = guard("connect_ex", socket.socket.connect_ex, address_host)
    socket.getaddrinfo = guard("getaddrinfo", socket.getaddrinfo, lambda host, *_: host)
    sys.argv = ["app.py", *sys.argv[1:]]
    runpy.run_path("app.py", run_name="__main__")
""")


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium: a developer without it skips, CI (whose .ci/run installs it) fails."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found: apt-get install chromium chromium-driver (.ci/run does this)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app.py did not serve {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def served_app(tmp_path):
    """`python app.py` on a free port of 127.0.0.1; yields (url, collect dir); afterwards, no network was touched."""
    port, collect_dir, log = free_port(), tmp_path / "collected", tmp_path / "app.log"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-c", GUARDED_APP, "--weights", str(DEFAULT_WEIGHTS), "--port",
                                    str(port), "--conf", str(CONF), "--collect-dir", str(collect_dir)],
                                   cwd=runtime.PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, process, log)
        yield url, collect_dir
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "NETWORK ATTEMPT" not in log.read_text(), log.read_text()[-3000:]


def page_with_digits(tiny_pages):
    """The first test page on which the shipped model finds two digits or more, with what the app finds on it."""
    digit_app = app.DigitApp(Detector(DEFAULT_WEIGHTS))
    for source in sorted((tiny_pages.parent / "images" / "test").glob("*.jpg")):
        page = digit_app.analyze(collect.read_upload(source), CONF, "upload")
        if len(page.result.detections) >= 2:
            return source, page
    pytest.fail(f"the shipped model finds fewer than 2 digits on every test page at confidence {CONF}")


def test_upload_read_correct_and_save_in_a_browser(chromium, served_app, tiny_pages, tmp_path):
    url, collect_dir = served_app
    source, expected = page_with_digits(tiny_pages)
    expected_text = app.numbers_markdown(expected.result).split("```")[1].strip()
    first = expected.order[0]
    new_digit = str((int(expected.result.detections.classes[first]) + 1) % 10)
    requested = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100})
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)  # actions; expect() has its own timeout, 5 s unless set
        expect.set_options(timeout=TIMEOUT_MS)
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        expect(page).to_have_title("digitdet")
        page.locator("#upload input[type=file]").set_input_files(source)

        numbers = page.locator("#numbers code")
        expect(numbers).to_have_text(expected_text)
        count = len(expected.result.detections)
        expect(page.locator("#numbers")).to_contain_text(f"upload: {count} digits")
        table = page.locator("#digits")
        expect(table.locator("[data-testid$='-0'][role=gridcell]")).to_have_count(count)

        table.get_by_test_id("cell-0-1").dblclick()  # row #1: another digit
        page.keyboard.press("Control+A")
        page.keyboard.type(new_digit)
        page.keyboard.press("Enter")
        expect(page.locator("#numbers")).to_contain_text(f"corrected: {count} digit")  # the preview follows edits
        table.get_by_test_id("cell-1-2").locator("input[type=checkbox]").click()  # row #2: not a digit
        expect(page.locator("#numbers")).to_contain_text(f"corrected: {count - 1} digit")
        page.screenshot(path=tmp_path / "app.png", full_page=True)

        page.locator("#save").click()
        expect(page.locator("#saved")).to_contain_text("Saved page-")
        browser.close()

    assert (tmp_path / "app.png").stat().st_size > 10_000
    assert {u.split("/")[2] for u in requested if "://" in u and not u.startswith(("data:", "blob:"))} == \
        {url.split("/")[2]}, "the page loaded something from outside the app"
    [image] = load_dataset(collect_dir / "data.yaml").images("train")
    labels = read_labels(label_path(image), 10)
    assert len(labels) == count - 1
    assert labels[0].cls == int(new_digit)
    x1, y1, x2, y2 = expected.result.detections.boxes[first]
    width, height = expected.result.width, expected.result.height
    np.testing.assert_allclose(labels[0].box, [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
                                               (y2 - y1) / height], atol=1e-6)
