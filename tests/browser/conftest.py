"""Browser tests: the real Chromium of the machine, driven by Playwright's Python package against
pytest-django's live server.

Playwright never downloads a browser here: it launches Debian's Chromium by path, its headless
shell (package chromium-headless-shell: the same Blink and V8 without the desktop browser around
them, which is what Playwright itself runs for headless Chromium) when installed, else
/usr/bin/chromium. The shell renders these pages for far less CPU than the full browser.
Without either, these tests skip with the command that installs it, unless REQUIRE_BROWSER=1 (set
by .ci/run), where a missing browser fails the run instead.

One Chromium serves all the tests of a module (launching it costs more than most tests); each
test gets a browser context of its own, so no cookie, storage or cache is shared.

Playwright's sync API marks an asyncio event loop as running in the test's thread for as long
as it is started, and Django refuses ORM calls from a thread with a running loop. That loop only
ever runs inside Playwright's own calls, never alongside the test's code, which is the case
DJANGO_ALLOW_ASYNC_UNSAFE exists for: it is set while the module's browser is up, so that the
database fixtures (the staff user, the seeded telemetry) work as usual. The pages themselves are
served by the live server's own thread.

Every page runs under the Content-Security-Policy the service sends: a test fails on any
violation the page reports (its `securitypolicyviolation` events, whatever the console says) and
on any page of this server answered without a policy.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest

HEADLESS_SHELL = Path("/usr/bin/chromium-headless-shell")
CHROMIUM = Path(
    os.environ.get("CHROMIUM_PATH")
    or (HEADLESS_SHELL if HEADLESS_SHELL.exists() else "/usr/bin/chromium")
)
CHROMIUM_ARGUMENTS = [
    # The full browser's own headless mode; the shell is headless whatever it is told.
    *(["--headless=new"] if CHROMIUM.name == "chromium" else []),
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STAFF_USERNAME = "ops-browser"
STAFF_PASSWORD = "ops-browser-password-5kq2"
# The window the ops pages must fit (a laptop's browser).
WIDTH = 1280
# Whatever is wider than the window, as "tag#id.class (width px)": the page itself, or any
# element reaching past the right edge.
OVERFLOWS = """
() => {
    const width = window.innerWidth;
    const wide = [];
    if (document.documentElement.scrollWidth > width) {
        wide.push(`page (${document.documentElement.scrollWidth} px)`);
    }
    for (const element of document.querySelectorAll("body *")) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && box.right > width + 1) {
            const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "")
                + (element.classList.length ? "." + [...element.classList].join(".") : "");
            wide.push(`${name} (right edge ${Math.round(box.right)} px)`);
        }
    }
    return wide.slice(0, 10);
}
"""


def assert_fits(page):
    """Nothing on the page reaches past the right edge of its window."""
    assert page.evaluate(OVERFLOWS) == []


# Hands every Content-Security-Policy violation of the page to the test (PageProblems), with what
# an operator needs to find it: the directive, what was blocked, where, and the start of it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
    window.reportCspViolation({
        directive: event.effectiveDirective,
        blocked: event.blockedURI,
        page: event.documentURI,
        source: `${event.sourceFile}:${event.lineNumber}:${event.columnNumber}`,
        sample: event.sample,
        disposition: event.disposition,
    });
});
"""


def _unavailable(reason):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path():
    if not CHROMIUM.exists():
        _unavailable(
            f"Chromium not found at {CHROMIUM}: install it with "
            "`apt-get update && apt-get install -y chromium-headless-shell`"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright's Python package is missing: pip install -r requirements/dev.txt")
    return str(CHROMIUM)


@dataclass
class PageProblems:
    """What would make a page broken or leaky: console errors, uncaught exceptions, failed
    requests, and any request to a host other than this machine (a CDN, say)."""

    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    external_requests: list = field(default_factory=list)
    csp_violations: list = field(default_factory=list)
    pages_without_csp: list = field(default_factory=list)

    def watch(self, page):
        # Before any page script runs, so that no violation of a page goes unheard.
        page.expose_binding("reportCspViolation", self._record_violation)
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", self._check_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on(
            "requestfailed",
            lambda request: self.failed_requests.append(f"{request.url}: {request.failure}"),
        )
        page.on("response", self._check_response)
        page.on("request", self._check_host)

    def _check_console(self, message):
        if message.type == "error":
            self.console_errors.append(f"{message.text} at {message.location['url']}")

    def _check_host(self, request):
        host = urlsplit(request.url).hostname
        if request.url.startswith(("http://", "https://")) and host not in LOCAL_HOSTS:
            self.external_requests.append(request.url)

    def _check_response(self, response):
        # Pages a test opens on purpose may answer 4xx (an API call without a key); what a page
        # loads (style sheets, images, scripts) must not fail.
        if response.status >= 400 and response.request.resource_type != "document":
            self.failed_requests.append(f"{response.url}: {response.status}")
        if (
            response.request.resource_type == "document"
            and urlsplit(response.url).hostname in LOCAL_HOSTS
            and "content-security-policy" not in response.headers
        ):
            self.pages_without_csp.append(response.url)

    def _record_violation(self, source, violation):
        self.csp_violations.append(violation)

    def take_csp_violations(self):
        """The violations so far, and the console's lines about them, forgotten: for a test that
        provokes one on purpose."""
        taken, self.csp_violations = self.csp_violations, []
        self.console_errors = [
            error for error in self.console_errors if "Content Security Policy" not in error
        ]
        return taken

    def assert_none(self):
        # Violations first: the console only says "Refused to ...", they say where and what.
        assert self.csp_violations == []
        assert self.pages_without_csp == []
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.failed_requests == []
        assert self.external_requests == []


def sign_in(page, live_server, next_path, username=STAFF_USERNAME, password=STAFF_PASSWORD):
    """Signs the staff user (or `username`) in through the admin login, landing on next_path;
    `live_server` is any server with a `url`."""
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url == f"{live_server.url}{next_path}", page.url


@pytest.fixture
def screenshots(tmp_path):
    directory = tmp_path / "screenshots"
    directory.mkdir()
    return directory


@pytest.fixture(scope="module")
def chromium(chromium_path):
    """The module's Chromium (see above for DJANGO_ALLOW_ASYNC_UNSAFE)."""
    from playwright.sync_api import sync_playwright

    with (
        mock.patch.dict(os.environ, {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGUMENTS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, live_server, staff_user, seeded_telemetry):
    """A fresh page in a fresh browser context (no cookie, storage or cache of another test)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems = PageProblems()
        problems.watch(page)
        yield page, problems
    finally:
        context.close()
