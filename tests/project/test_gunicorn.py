"""gunicorn.conf.py: worker arithmetic, --preload safety, and the real server end to end.

The configuration is read, and the server's database and static files prepared, in fresh
processes forked from the warmed-up helper of tests/fresh_python.py.
"""

import json
import os
import re
import socket
import subprocess

import pytest
import requests

from tests.migrated_databases import migrate
from tests.processes import (
    GUNICORN,
    PROJECT_DIR,
    free_port,
    production_environment,
    project_environment,
    run_manage,
    run_python,
    running_gunicorn,
)

pytestmark = pytest.mark.system

PRINT_GUNICORN_CONFIG = (
    "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
    "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'threads', 'worker_class', "
    "'max_requests', 'max_requests_jitter', 'timeout', 'graceful_timeout')}))"
)


def gunicorn_config(**variables):
    result = run_python(PRINT_GUNICORN_CONFIG, project_environment(**variables))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_default_workers_are_twice_the_cores_plus_one_capped_at_four():
    assert gunicorn_config()["workers"] == min(4, 2 * os.cpu_count() + 1)


def test_default_is_the_threaded_worker_chosen_by_the_benchmark():
    config = gunicorn_config()
    assert (config["worker_class"], config["threads"]) == ("gthread", 8)


def test_web_concurrency_sets_the_worker_count():
    assert gunicorn_config(WEB_CONCURRENCY="3")["workers"] == 3


def test_threads_switch_to_the_threaded_worker():
    config = gunicorn_config(GUNICORN_THREADS="4")
    assert (config["threads"], config["worker_class"]) == (4, "gthread")


def test_one_thread_uses_the_sync_worker():
    assert gunicorn_config(GUNICORN_THREADS="1")["worker_class"] == "sync"


def test_port_sets_the_bind_address():
    assert gunicorn_config(PORT="9123")["bind"] == ["0.0.0.0:9123"]


def test_workers_are_recycled_with_jitter_and_shut_down_gracefully():
    config = gunicorn_config()
    assert config["max_requests"] > 0
    assert 0 < config["max_requests_jitter"] < config["max_requests"]
    assert 0 < config["graceful_timeout"] <= config["timeout"]


def test_bad_worker_count_stops_gunicorn_naming_the_variable():
    result = run_python(PRINT_GUNICORN_CONFIG, project_environment(WEB_CONCURRENCY="lots"))
    assert result.returncode == 2
    assert "Configuration error: WEB_CONCURRENCY" in result.stderr


# gunicorn's logger as the server sets it up (settings.LOGGING through logconfig_dict), asked for
# the access line of one request; prints how many times it built the line's atoms, and the
# records gunicorn.access passed to its handlers.
GUNICORN_ACCESS_LINE = """
import datetime, logging, os, runpy
from types import SimpleNamespace
from gunicorn.config import Config

conf = runpy.run_path("gunicorn.conf.py")
config = Config()
config.set("logconfig_dict", conf["logconfig_dict"])
config.set("logger_class", conf.get("logger_class", "gunicorn.glogging.Logger"))
built = []


class CountingLogger(config.logger_class):
    def atoms(self, *arguments):
        built.append(1)
        return super().atoms(*arguments)


log = CountingLogger(config)
if os.environ.get("GUNICORN_ACCESS_LEVEL"):
    logging.getLogger("gunicorn.access").setLevel(os.environ["GUNICORN_ACCESS_LEVEL"])
written = []
handler = logging.Handler()
handler.emit = written.append
log.access_log.addHandler(handler)
response = SimpleNamespace(status="200 OK", headers=[], sent=2, response_length=2)
request = SimpleNamespace(headers=[], method="GET", path="/", query="", version=(1, 1))
environ = {
    "REMOTE_ADDR": "127.0.0.1",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/",
    "PATH_INFO": "/",
    "SERVER_PROTOCOL": "HTTP/1.1",
}
log.access(response, request, environ, datetime.timedelta(milliseconds=3))
print(len(built), len(written))
"""


def gunicorn_access_line(level=""):
    environment = project_environment(
        DJANGO_SETTINGS_MODULE="project.settings", GUNICORN_ACCESS_LEVEL=level
    )
    result = run_python(GUNICORN_ACCESS_LINE, environment)
    assert result.returncode == 0, result.stderr
    return [int(count) for count in result.stdout.split()]


def test_gunicorn_builds_no_access_line_that_its_logger_level_drops():
    assert gunicorn_access_line() == [0, 0]


def test_gunicorn_access_line_is_written_when_its_logger_is_set_to_info():
    assert gunicorn_access_line("INFO") == [1, 1]


def test_pre_fork_closes_connections_and_pools_opened_in_the_master():
    code = """
import django, runpy
django.setup()
from django.db import connection
connection.ensure_connection()
pre_fork = runpy.run_path("gunicorn.conf.py")["pre_fork"]
pre_fork(None, None)
pools = getattr(type(connection), "_connection_pools", {})
print(connection.connection is None, connection.alias in pools)
"""
    environment = project_environment(DJANGO_SETTINGS_MODULE="project.settings")
    if os.environ.get("DATABASE_URL"):
        environment["DATABASE_URL"] = os.environ["DATABASE_URL"]
        environment["DJANGO_ENV"] = "test"
    # Connect to the server's maintenance database: the test database may not exist yet.
    if environment.get("DATABASE_URL", "").startswith("postgres"):
        environment["DATABASE_URL"] = environment["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    result = run_python(code, environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


def test_a_worker_moves_what_it_loaded_out_of_the_garbage_collectors_reach():
    code = """
import django, gc, runpy
django.setup()
post_worker_init = runpy.run_path("gunicorn.conf.py")["post_worker_init"]
before = gc.get_freeze_count()
post_worker_init(None)
print(before, gc.get_freeze_count() > 0)
"""
    result = run_python(code, project_environment(DJANGO_SETTINGS_MODULE="project.settings"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "True"]


def test_a_worker_lets_a_requests_objects_go_before_collecting_them():
    # A list page's worth of live containers (rows, their dicts) allocated after the worker
    # started: at Python's default threshold the collector walks them several times.
    code = """
import django, gc, runpy
django.setup()
post_worker_init = runpy.run_path("gunicorn.conf.py")["post_worker_init"]
post_worker_init(None)
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
rows = [{"id": number, "customer": {"id": number}} for number in range(2000)]
print(len(collections))
"""
    result = run_python(code, project_environment(DJANGO_SETTINGS_MODULE="project.settings"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]


@pytest.fixture(scope="module")
def production_gunicorn(tmp_path_factory):
    """gunicorn in production mode on a fresh SQLite file with collected static files; its
    output is kept for the tests that read it."""
    workdir = tmp_path_factory.mktemp("server")
    environment = production_environment(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DJANGO_STATIC_ROOT=workdir / "static",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        WEB_CONCURRENCY="2",
        # gunicorn's own INFO lines ("Listening at", "Serving on") for the tests that read them.
        LOG_LEVEL="INFO",
    )
    # The tests load the admin's login page and its stylesheet. Hashing and compressing (gzip and
    # brotli) the API docs' assets, silk's and the admin's vendored JavaScript too took ~7 s.
    collect_admin_assets = (
        "collectstatic",
        "--noinput",
        "-i",
        "drf_spectacular_sidecar",
        "-i",
        "rest_framework",
        "-i",
        "silk",
        "-i",
        "vendor",
    )
    for result in (
        migrate(environment),
        run_manage(*collect_admin_assets, environment=environment),
    ):
        assert result.returncode == 0, result.stderr
    # Started as the shell starts it: the other tests' servers are forked from a warmed-up helper.
    with running_gunicorn(
        environment, log_path=workdir / "gunicorn.log", new_interpreter=True
    ) as server:
        yield server


@pytest.fixture(scope="module")
def production_server(production_gunicorn):
    return production_gunicorn.base_url


def test_server_answers_liveness(production_server):
    response = requests.get(f"{production_server}/health", timeout=5)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def hashed_stylesheet_path(production_server):
    page = requests.get(f"{production_server}/admin/login/", timeout=5)
    assert page.status_code == 200
    match = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert match, "the login page should link the hashed stylesheet"
    return match.group(1)


def test_static_files_are_linked_by_hashed_name(production_server):
    assert hashed_stylesheet_path(production_server)


def test_hashed_static_files_are_cached_for_a_year(production_server):
    path = hashed_stylesheet_path(production_server)
    response = requests.get(f"{production_server}{path}", timeout=5)
    assert response.status_code == 200
    assert "max-age=315360000" in response.headers["Cache-Control"]
    assert "immutable" in response.headers["Cache-Control"]


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_static_files_are_served_compressed(production_server, encoding):
    path = hashed_stylesheet_path(production_server)
    response = requests.get(
        f"{production_server}{path}", headers={"Accept-Encoding": encoding}, timeout=5, stream=True
    )
    assert response.headers["Content-Encoding"] == encoding
    assert response.headers["Vary"] == "Accept-Encoding"
    response.close()


def test_unknown_host_is_refused_but_probes_answer(production_server):
    page = requests.get(
        f"{production_server}/admin/login/", headers={"Host": "10.1.2.3:8000"}, timeout=5
    )
    probe = requests.get(
        f"{production_server}/health", headers={"Host": "10.1.2.3:8000"}, timeout=5
    )
    assert page.status_code == 400
    assert probe.status_code == 200


def gunicorn_on_a_busy_port(environment):
    """gunicorn started on a port another socket holds: (its completed process, the port)."""
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run(
            [GUNICORN, "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    return result, port


def test_a_busy_port_stops_gunicorn_with_one_line_naming_port(tmp_path):
    environment = project_environment(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result, port = gunicorn_on_a_busy_port(environment)

    assert result.returncode == 2
    assert f"Configuration error: PORT: {port} on 127.0.0.1 is in use already" in result.stderr
    assert "PORT=" in result.stderr
    assert "Connection in use" not in result.stderr


def test_a_gunicorn_that_refuses_to_start_leaves_no_prometheus_directory(tmp_path):
    environment = project_environment(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PROMETHEUS_MULTIPROC_DIR=None,
        TMPDIR=tmp_path,  # where gunicorn.conf.py makes the master's own directory
    )
    result, _ = gunicorn_on_a_busy_port(environment)

    assert result.returncode == 2
    assert list(tmp_path.glob("orders-prometheus-*")) == []


def test_gunicorn_says_serving_on_once_it_has_bound_the_port(production_gunicorn):
    log = production_gunicorn.log()

    listening = log.index(f"Listening at: {production_gunicorn.base_url}")
    assert log.index(f"Serving on {production_gunicorn.base_url}") > listening
