"""Real-browser test kit: serve the console as ``hfops console`` does (:mod:`hfops.console_server`) and
drive headless Chromium (selenium).

Streamlit renders client-side (a few seconds): always wait for elements, never for "page loaded".
Dataframe cells are drawn on a canvas, so assert data through AppTest and use the browser for layout,
navigation and flows.

Use it from a test module::

    import pytest
    from tests.browser import serve_console, wait_for, wait_for_text, save_screenshot

    pytest_plugins = ["tests.browser"]          # fixtures: ``chrome`` (module scope), ``console_server``
    pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

    def test_candidates(chrome, console_server, db_path, artifacts):
        server = console_server(db_path)         # or console_server(db_path, worker=True, HFOPS_DEMO="1")
        chrome.get(server.url)
        wait_for(chrome, "[data-testid=stDataFrame]")
        save_screenshot(chrome, artifacts, "candidates")

Pieces usable without the fixtures: :func:`serve_console` (context manager -> :class:`ConsoleServer`),
:func:`chrome_driver` (context manager -> selenium ``WebDriver``), :func:`ensure_chromium`, ``free_port``
(from tests.processes), and the page helpers :func:`wait_for`, :func:`wait_for_text`, :func:`wait_idle`,
:func:`open_page`, :func:`choose_option`, :func:`save_screenshot`. When a test using ``chrome`` fails, a
screenshot is saved as ``test-artifacts/FAILED-<test>.png``.

Chromium comes from Debian (``chromium`` + ``chromium-driver``); ``make test`` installs them as root.
When they are missing and cannot be installed, browser tests are skipped with the reason.

(PYTEST_DONT_REWRITE: test modules import helpers from here before it is registered as a plugin.)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hfops.console_server import command as console_command
from tests.processes import free_port, stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "app.py"
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
WINDOW_SIZE = (1400, 1800)
SERVER_START_TIMEOUT = 60.0
# What production serving sets in .streamlit/config.toml, given as flags too: a served app elsewhere (the
# Space bundle) may lack the file.
SERVER_FLAGS = (
    *("--server.headless", "true", "--server.fileWatcherType", "none"),
    *("--server.runOnSave", "false"),
)
ELEMENT_TIMEOUT = 30.0
# Never handed to a served console unless a test passes them explicitly.
SCRUBBED_ENV = (
    "HUGGINGFACE_API_KEY",
    "HUGGINGFACE_WRITE_TOKEN",
    "HF_TOKEN",
    "SPACE_ID",
    "HFOPS_DB",
    "HFOPS_CONFIG",
    "HFOPS_DEMO",
    "HF_HUB_OFFLINE",
)


# --- Chromium ---------------------------------------------------------------------------------------------


def _find(preferred: str, *names: str) -> str | None:
    if Path(preferred).is_file():
        return preferred
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> tuple[str, str]:
    """Paths of Chromium and chromedriver.

    Installs them as root when missing (``scripts/install-sysdeps.sh``), else skips the calling test with the
    reason.
    """
    browser = _find(CHROMIUM, "chromium", "chromium-browser")
    driver = _find(CHROMEDRIVER, "chromedriver")
    if (browser is None or driver is None) and os.geteuid() == 0:
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install-sysdeps.sh")], check=False, timeout=900)
        browser = _find(CHROMIUM, "chromium", "chromium-browser")
        driver = _find(CHROMEDRIVER, "chromedriver")
    if browser is None or driver is None:
        missing = [
            name for name, path in (("chromium", browser), ("chromium-driver", driver)) if path is None
        ]
        pytest.skip(
            f"browser test needs Debian {' '.join(missing)}; not installed and not root to install "
            f"(run `sudo apt-get install chromium chromium-driver` or `make test` as root)"
        )
    return browser, driver


@contextlib.contextmanager
def chrome_driver(
    user_data_dir: str | Path | None = None, window: tuple[int, int] = WINDOW_SIZE
) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = ensure_chromium()
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium-manager is not used (explicit paths) anyway
    with contextlib.ExitStack() as stack:
        if user_data_dir is None:
            user_data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="hfops-chrome-"))
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in CHROME_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={user_data_dir}")
        options.add_argument(f"--window-size={window[0]},{window[1]}")
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        driver.set_page_load_timeout(ELEMENT_TIMEOUT)
        try:
            yield driver
        finally:
            driver.quit()


# --- The console served by `hfops.console_server` -----------------------------------------------------------


@dataclass
class ConsoleServer:
    """A running console server process (``streamlit run app.py`` behind :mod:`hfops.console_server`)."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False, default_factory=dict)
    worker: subprocess.Popen[bytes] | None = None  # ``hfops worker`` on the same store, when asked for

    def log(self, tail: int = 4000) -> str:
        """The end of the server's combined stdout/stderr."""
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and its worker (SIGTERM, then SIGKILL after 10 s)."""
        for process in (self.process, self.worker):
            if process is not None:
                stop_process(process)


def hfops_command() -> list[str]:
    """The installed ``hfops`` console script next to this interpreter (else ``python -m hfops.cli``)."""
    script = Path(sys.executable).with_name("hfops")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hfops.cli"]


def _wait_healthy(server: ConsoleServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s:\n{server.log()}")


def start_console(
    db_path: str | Path | None = None,
    log_dir: str | Path | None = None,
    app: str | Path = APP,
    timeout: float = SERVER_START_TIMEOUT,
    worker: bool = False,
    launcher: Callable[..., list[str]] = console_command,
    **env: str,
) -> ConsoleServer:
    """Start the console server for ``app`` on a free 127.0.0.1 port and wait for ``/_stcore/health``.

    ``launcher(app, port=, address=, flags=)`` gives the command line (default: the one ``hfops console``
    runs; a benchmark passes another to compare).

    ``db_path`` becomes ``HFOPS_DB``; ``env`` adds variables (``HFOPS_DEMO="1"``, ``HFOPS_CONFIG=...``).
    Secrets and console variables of the calling environment are not passed on unless given in ``env``.
    ``worker=True`` also starts ``hfops worker --db db_path`` (same env), so enqueued jobs really run.
    The caller stops it (:meth:`ConsoleServer.stop`); prefer :func:`serve_console`.
    """
    if worker and db_path is None:
        raise ValueError("worker=True needs db_path")
    base = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    base.update(HF_HUB_DISABLE_TELEMETRY="1", PYTHONUNBUFFERED="1")
    if db_path is not None:
        base["HFOPS_DB"] = str(db_path)
    base.update(env)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="hfops-streamlit-"))
    last_error: Exception | None = None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        log_path = log_dir / f"streamlit-{port}.log"
        with open(log_path, "wb") as log:  # the child keeps its own handle
            process = subprocess.Popen(
                launcher(
                    app,
                    port=port,
                    address="127.0.0.1",
                    flags=SERVER_FLAGS,
                ),
                cwd=str(REPO_ROOT),
                env=base,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = ConsoleServer(f"http://127.0.0.1:{port}", process, log_path, base)
        try:
            _wait_healthy(server, timeout)
        except RuntimeError as exc:
            server.stop()
            last_error = exc
            if "already in use" not in server.log():
                break
            continue
        if worker:
            config = ["--config", base["HFOPS_CONFIG"]] if base.get("HFOPS_CONFIG") else []
            with open(log_dir / f"worker-{port}.log", "wb") as log:
                server.worker = subprocess.Popen(
                    [*hfops_command(), *config, "worker", "--db", str(db_path)],
                    cwd=str(log_dir),
                    env=base,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        return server
    raise RuntimeError(f"could not start the console: {last_error}")


@contextlib.contextmanager
def serve_console(
    db_path: str | Path | None = None, log_dir: str | Path | None = None, worker: bool = False, **env: str
) -> Iterator[ConsoleServer]:
    """:func:`start_console` as a context manager (server and worker stopped on exit)."""
    server = start_console(db_path, log_dir, worker=worker, **env)
    try:
        yield server
    finally:
        server.stop()


# --- Page helpers -----------------------------------------------------------------------------------------


def wait_for(
    driver: Any, css: str, timeout: float = ELEMENT_TIMEOUT, visible: bool = True, text: str | None = None
) -> Any:
    """The first element matching ``css`` (visible, containing ``text`` if given) once it appears."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def find(d: Any) -> Any:
        try:
            for element in d.find_elements(By.CSS_SELECTOR, css):
                if visible and not element.is_displayed():
                    continue
                if text is not None and text not in element.text:
                    continue
                return element
        except StaleElementReferenceException:
            return False
        return False

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(find)
    except TimeoutException:
        wanted = f"{css!r}" + (f" containing {text!r}" if text else "")
        raise AssertionError(f"no element {wanted} after {timeout:.0f} s on {driver.current_url}") from None


def wait_for_text(driver: Any, text: str, css: str = "body", timeout: float = ELEMENT_TIMEOUT) -> Any:
    """The first visible element matching ``css`` whose text contains ``text``."""
    return wait_for(driver, css, timeout=timeout, text=text)


def wait_idle(driver: Any, timeout: float = ELEMENT_TIMEOUT, settle: float = 0.5) -> None:
    """Wait until the app has finished its script run (no "running" status widget for ``settle`` seconds)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        busy = any(
            e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid=stStatusWidget]")
        )
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return
        time.sleep(0.1)
    raise AssertionError(f"the app was still running after {timeout:.0f} s")


def open_page(driver: Any, title: str, timeout: float = ELEMENT_TIMEOUT) -> None:
    """Follow the sidebar navigation link labelled ``title`` and wait for the page to render."""
    link = wait_for(driver, "[data-testid=stSidebarNav] a", timeout=timeout, text=title)
    link.click()
    wait_for(driver, "h1", timeout=timeout, text=title)
    wait_idle(driver, timeout)


def choose_option(driver: Any, label: str, option: str, timeout: float = ELEMENT_TIMEOUT) -> None:
    """Pick ``option`` in the ``st.selectbox`` labelled ``label`` (types it, then clicks the match)."""
    from selenium.webdriver.common.by import By

    box = wait_for(driver, "[data-testid=stSelectbox]", timeout=timeout, text=label)
    box.find_element(By.CSS_SELECTOR, "input").click()
    box.find_element(By.CSS_SELECTOR, "input").send_keys(option)
    choice = wait_for(driver, "[role=option]", timeout=timeout, text=option)
    choice.click()
    wait_idle(driver, timeout)


def save_screenshot(driver: Any, folder: str | Path, name: str) -> Path:
    """Save a PNG of the current viewport as ``folder/name.png`` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    if not driver.save_screenshot(str(path)):
        raise AssertionError(f"could not save a screenshot to {path}")
    return path


# --- pytest fixtures (enable with `pytest_plugins = ["tests.browser"]`) -----------------------------------


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium WebDriver shared by the tests of a module (fresh profile)."""
    with chrome_driver(tmp_path_factory.mktemp("chrome-profile")) as driver:
        yield driver


@pytest.fixture
def console_server(tmp_path: Path) -> Iterator[Callable[..., ConsoleServer]]:
    """Factory ``console_server(db_path, worker=False, **env) -> ConsoleServer``; stopped after the test."""
    servers: list[ConsoleServer] = []

    def start(db_path: str | Path | None = None, worker: bool = False, **env: str) -> ConsoleServer:
        server = start_console(db_path, tmp_path, worker=worker, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Keep a screenshot of the browser when a test using ``chrome`` fails."""
    outcome = yield
    report = outcome.get_result()
    driver = getattr(item, "funcargs", {}).get("chrome")
    if report.when == "call" and report.failed and driver is not None:
        with contextlib.suppress(Exception):
            save_screenshot(driver, ARTIFACTS, f"FAILED-{item.name}")
