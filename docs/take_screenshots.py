"""Takes the screenshots of docs/images/ from a real run: the service started as `make run` starts
it, `manage.py demo_traffic` against it, then the ops pages in headless Chromium.

    .venv/bin/python docs/take_screenshots.py                       # on a throwaway SQLite file
    .venv/bin/python docs/take_screenshots.py --database-url postgres://postgres@127.0.0.1:5432/x

A PostgreSQL database (empty; created beforehand with createdb) shows the database page's
PostgreSQL sections. Needs Debian's Chromium (its headless shell, else /usr/bin/chromium, or
CHROMIUM_PATH: as tests/browser/conftest.py chooses) and the dev requirements (Playwright).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGUMENTS  # noqa: E402
from tests.demo_service import ADMIN_PASSWORD, ADMIN_USERNAME, running_demo_service  # noqa: E402

IMAGES = PROJECT_DIR / "docs" / "images"
PAGES = {
    "ops-overview.png": "/admin/ops/?window=15m",
    "ops-routes.png": "/admin/ops/routes/?window=15m",
    "ops-database.png": "/admin/ops/database/",
}
VIEWPORT = {"width": 1280, "height": 900}


def take(base_url, directory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGUMENTS
        )
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{base_url}/admin/login/?next=/admin/ops/")
        page.fill("#id_username", ADMIN_USERNAME)
        page.fill("#id_password", ADMIN_PASSWORD)
        with page.expect_navigation():
            page.click("input[type=submit]")
        for name, path in PAGES.items():
            page.goto(f"{base_url}{path}", wait_until="networkidle")
            page.screenshot(path=directory / name, full_page=True)
            print(f"{directory / name}: {path}")
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="an empty database (default: SQLite)")
    parser.add_argument("--minutes", default="0.5", help="how long demo_traffic runs")
    arguments = parser.parse_args()
    os.chdir(PROJECT_DIR)
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        database_url = arguments.database_url or f"sqlite:///{directory}/db.sqlite3"
        with running_demo_service(
            database_url, directory, minutes=arguments.minutes, rate="10"
        ) as service:
            print(service.traffic_output)
            take(service.url, IMAGES)


if __name__ == "__main__":
    main()
