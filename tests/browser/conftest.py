"""The static site in a real browser (Playwright driving Debian's Chromium), offline.

These tests need a built site (``jupyter-book build .`` writes ``_build/html``) and Chromium
(``apt-get install -y chromium``; Playwright's own browser download is never used). They run
only when asked for, so that the main ``pytest`` does not test a stale or missing site:

    jupyter-book build -W --keep-going .
    pytest tests/browser -n 0                 # or: SITE_BROWSER_TEST=1 pytest

Asked for but missing the site or Chromium, they are skipped with the reason, unless
``REQUIRE_BROWSER_TEST=1`` (set by ``.ci/run``), which turns that into a failure.
Environment: ``BOOK_DIR`` (default: the repository) is the book whose ``_build/html`` and
``_toc.yml`` are used; ``CHROMIUM`` the browser executable (default ``/usr/bin/chromium``).
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BOOK = Path(os.environ.get("BOOK_DIR", ROOT)).resolve()
SITE = BOOK / "_build" / "html"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path():
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def _asked_for(config):
    if os.environ.get("SITE_BROWSER_TEST") == "1" or os.environ.get("REQUIRE_BROWSER_TEST") == "1":
        return True
    start = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (start / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def _missing():
    reasons = []
    if not (SITE / "index.html").exists():
        reasons.append(f"no built site at {SITE} (run: jupyter-book build -W --keep-going .)")
    if chromium_path() is None:
        reasons.append("Chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("the playwright Python package is not installed (pip install -r requirements.txt)")
    return reasons


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not ours:
        return
    if not _asked_for(config):
        marker = pytest.mark.skip(
            reason="site tests run when asked for: pytest tests/browser "
            "(after jupyter-book build), or SITE_BROWSER_TEST=1"
        )
    else:
        reasons = _missing()
        if not reasons:
            return
        if os.environ.get("REQUIRE_BROWSER_TEST") == "1":
            raise pytest.UsageError("REQUIRE_BROWSER_TEST=1 but " + "; ".join(reasons))
        marker = pytest.mark.skip(reason="; ".join(reasons))
    for item in ours:
        item.add_marker(marker)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site_url():
    """The built site served on a free localhost port for the whole session."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Chromium with a fresh profile; one per session, a new page per test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        yield context
        context.close()


class PageLog:
    """What a page did that it should not: console errors, failed and external requests."""

    def __init__(self, base):
        self.base = base
        self.console_errors, self.page_errors, self.failed, self.blocked = [], [], [], []

    def problems(self):
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"failed request: {m}" for m in self.failed]
            + [f"request to another host (blocked): {m}" for m in self.blocked]
        )


@pytest.fixture
def offline_page(browser, site_url):
    """A page of the site where every request that is not to the local server is aborted
    and recorded, as are console errors, uncaught exceptions and failed requests."""
    page = browser.new_page()
    log = PageLog(site_url)

    def route(route):
        url = route.request.url
        if url.startswith(site_url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            log.blocked.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda message: log.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on(
        "requestfailed",
        lambda request: (
            log.failed.append(f"{request.url} ({request.failure})") if request.url.startswith(site_url) else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            log.failed.append(f"{response.url} (HTTP {response.status})") if response.status >= 400 else None
        ),
    )
    page.log = log
    yield page
    page.close()
