"""The production topology on this machine, without Docker: a PostgreSQL primary and a streaming
replica, Redis, several gunicorn instances of the service behind HAProxy, Prometheus with the
project's rules scraping every instance, Alertmanager notifying a local webhook receiver.

Every component is the real program (Debian's postgresql, redis-server, haproxy, prometheus,
prometheus-alertmanager; gunicorn from the virtualenv) on free local ports, in one temporary
directory, started and stopped by `Stack`. HAProxy runs deploy/haproxy/haproxy.cfg, Prometheus
deploy/prometheus/prometheus.yml and Alertmanager deploy/alertmanager/alertmanager.yml, each with
only what docker compose's DNS gives there replaced by local addresses.

Two ways in, one implementation:
- `make stack` (python -m tests.stack): starts it, prints where everything listens, and stops it
  on Ctrl-C, for an operator rehearsing a fault by hand;
- the `stack` fixture of tests/deploy/test_topology_drills.py, whose drills break it on purpose.
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import yaml

from tests import yaml_files
from tests.processes import (
    PROJECT_DIR,
    free_port,
    port_accepts,
    project_environment,
    run_manage,
    running_gunicorn,
    stop_process_group,
    wait_until,
)

HAPROXY_CONFIG = PROJECT_DIR / "deploy" / "haproxy" / "haproxy.cfg"
PROMETHEUS_CONFIG = PROJECT_DIR / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = PROJECT_DIR / "deploy" / "alertmanager" / "alertmanager.yml"
# The service's settings, static files served from the apps, plus /drill/error/, which fails.
STACK_SETTINGS = "tests.stack_settings"
SERVICE_JOB = "orders-service"
LOAD_BALANCER_JOB = "loadbalancer"

POSTGRES_BIN = Path(
    os.environ.get("POSTGRES_BIN")
    or max(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        default=Path("/usr/lib/postgresql/bin"),
    )
)
PROGRAMS = {
    "initdb": str(POSTGRES_BIN / "initdb"),
    "redis-server": shutil.which("redis-server"),
    "haproxy": shutil.which("haproxy") or "/usr/sbin/haproxy",
    "prometheus": shutil.which("prometheus"),
    "alertmanager": shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"),
}
# Where each program comes from on Debian (`apt-get install <package>`).
DEBIAN_PACKAGES = {
    "initdb": "postgresql",
    "redis-server": "redis-server",
    "haproxy": "haproxy",
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
}
START_SECONDS = 60
# Programs start in milliseconds: a port polled this often finds them up as soon as they are.
PORT_POLL_SECONDS = 0.0005
STOP_SECONDS = 30
# Production settings, one worker of four threads per instance, statistics flushed every second
# (the drills compare them with what they sent), no API throttling in the way of the load.
INSTANCE_SETTINGS = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "stack-only-" + "Vd3nQ8zL1pR6tW9y" * 3,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_SECURE_HSTS_SECONDS": "0",
    "DJANGO_TRUSTED_PROXY_COUNT": "1",
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "4",
    "DB_POOL_MAX_SIZE": "4",
    "TELEMETRY_FLUSH_SECONDS": "1",
    "API_THROTTLE_RATE": "100000/minute",
    "LOG_FORMAT": "json",
}


def missing_programs():
    """The Debian packages to install for the programs this machine lacks."""
    return sorted(
        DEBIAN_PACKAGES[name]
        for name, path in PROGRAMS.items()
        if not path or not Path(path).exists()
    )


class Program:
    """A long-running program in a process group of its own, its output in a log file."""

    def __init__(
        self, name, command, log_path, environment=None, port=None, ready_path=None, ready_when=None
    ):
        self.name, self.command, self.log_path = name, command, log_path
        self.environment = environment
        self.port = port
        # An HTTP path answering 200 once the program serves (listening can come earlier).
        self.ready_path = ready_path
        # Or any other sign that it serves: a callable, true once it does.
        self.ready_when = ready_when
        self.process = None

    def start(self):
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=PROJECT_DIR,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()  # a program that never became ready must not outlive its caller
            raise

    def _wait_until_ready(self):
        if self.port is not None and not wait_until(
            lambda: port_accepts(self.port) or self.process.poll() is not None,
            START_SECONDS,
            step=PORT_POLL_SECONDS,
        ):
            raise RuntimeError(f"{self.name} did not listen on {self.port}:\n{self.log()}")
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log()}")
        if self.ready_path is not None and not wait_until(self._ready, START_SECONDS):
            raise RuntimeError(f"{self.name} never ready on {self.ready_path}:\n{self.log()}")
        if self.ready_when is not None and not wait_until(self.ready_when, START_SECONDS):
            raise RuntimeError(f"{self.name} never ready:\n{self.log()}")

    def _ready(self):
        try:
            url = f"http://127.0.0.1:{self.port}{self.ready_path}"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.process is not None:
            stop_process_group(self.process, STOP_SECONDS)

    def log(self):
        return Path(self.log_path).read_text(errors="replace")[-4000:]


class PostgresServer:
    """A PostgreSQL cluster run as the postgres user (initdb refuses root), trust auth."""

    def __init__(self, name, directory):
        self.name = name
        self.directory = directory
        self.data = directory / name
        self.log_path = directory / f"{name}.log"
        self.port = free_port()
        self.run_as = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, program, *arguments, timeout=120):
        command = [str(POSTGRES_BIN / program), *arguments]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.directory
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{completed.stdout}{completed.stderr}")
        return completed

    def initialise_primary(self):
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        # As compose's postgres: statement statistics for the ops database page. A primary that
        # streams to replicas (wal_level replica and the replication line of pg_hba are
        # initdb's defaults).
        with open(self.data / "postgresql.conf", "a") as configuration:
            configuration.write("shared_preload_libraries = 'pg_stat_statements'\n")

    def initialise_replica_of(self, primary):
        """A base backup of `primary` that starts as its streaming standby (-R)."""
        self._run(
            "pg_basebackup",
            "--host=127.0.0.1",
            f"--port={primary.port}",
            "--username=postgres",
            f"--pgdata={self.data}",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--no-sync",
        )

    def start(self):
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w",
            "-t", str(START_SECONDS), "start",
        )  # fmt: skip

    def stop(self, mode="fast"):
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database="orders"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, statement, database="orders"):
        """Run one statement; returns its rows (an empty list when it returns none)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []


class WebInstance:
    """One gunicorn master of the service on a fixed port: stopped and started again on it."""

    def __init__(self, name, environment, log_path):
        self.name = name
        self.port = free_port()
        # Its own Prometheus directory beside its log, gone with the test's: a master killed
        # outright (`kill`) never removes the one gunicorn.conf.py would make in /tmp.
        prometheus_directory = log_path.parent / f"{name}-prometheus"
        prometheus_directory.mkdir(exist_ok=True)
        self.environment = {
            **environment,
            "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": str(prometheus_directory),
        }
        self.log_path = log_path
        self._running = None
        self.server = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self._running = running_gunicorn(
            self.environment,
            port=self.port,
            log_path=self.log_path,
            startup_seconds=START_SECONDS,
            stop_seconds=STOP_SECONDS,
        )
        self.server = self._running.__enter__()

    def stop(self):
        """SIGTERM: gunicorn finishes its in-flight requests, then exits."""
        if self._running is not None:
            running, self._running = self._running, None
            running.__exit__(None, None, None)

    def kill(self):
        """SIGKILL to the master and its workers: in-flight requests are cut."""
        os.killpg(self.server.process.pid, signal.SIGKILL)
        self.server.process.wait()
        self.stop()

    def is_running(self):
        return self._running is not None


class HAProxyRuntime:
    """HAProxy's runtime API (the admin socket of haproxy.cfg)."""

    def __init__(self, socket_path):
        self.socket_path = str(socket_path)

    def command(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(self.socket_path)
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def answers(self):
        """Whether the API takes commands: HAProxy can listen on its ports before it has created
        the socket, so a port that accepts says nothing of it."""
        try:
            return bool(self.command("show info"))
        except OSError:
            return False

    def place(self, slot, address):
        """Point server slot `slot` (web1, web2, ...) of backend web at `address` and enable it."""
        host, port = address.rsplit(":", 1)
        for line in (f"set server web/{slot} addr {host} port {port}", f"enable server web/{slot}"):
            answer = self.command(line).strip()
            if answer and "changed" not in answer:
                raise RuntimeError(f"HAProxy refused {line!r}: {answer}")

    def statistics(self):
        """{name: its `show stat` columns} for backend web: its servers and "BACKEND"."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        found = {}
        for row in rows[1:]:
            values = dict(zip(header, row.split(","), strict=False))
            if values.get("pxname") == "web":
                found[values["svname"]] = values
        return found

    def server_states(self):
        """{slot: status} for backend web's servers ("UP", "DOWN", "MAINT", ...)."""
        return {
            name: values["status"]
            for name, values in self.statistics().items()
            if name.startswith("web")
        }


def load_balancer(directory, port, stats_port, slots):
    """HAProxy on deploy/haproxy/haproxy.cfg, its `slots` server slots in maintenance, and its
    runtime API: the Program is ready once that API takes commands."""
    runtime = HAProxyRuntime(Path(directory) / "haproxy.sock")
    program = Program(
        "haproxy",
        [PROGRAMS["haproxy"], "-f", str(HAPROXY_CONFIG)],
        Path(directory) / "haproxy.log",
        environment={
            **os.environ,
            "LB_BIND": f"127.0.0.1:{port}",
            "LB_STATS_BIND": f"127.0.0.1:{stats_port}",
            "WEB_SLOTS": str(slots),
            "HAPROXY_ADMIN_SOCKET": str(runtime.socket_path),
        },
        port=port,
        ready_when=runtime.answers,
    )
    return program, runtime


@dataclass
class ReceivedNotification:
    received_at: float
    status: str
    alert_names: list


@dataclass
class AlertReceiver:
    """The webhook Alertmanager notifies: records every notification it receives."""

    log_path: Path
    notifications: list = field(default_factory=list)

    def __post_init__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.record(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/alerts"

    def record(self, payload):
        with open(self.log_path, "a") as log:
            log.write(json.dumps(payload) + "\n")
        for alert in payload.get("alerts", []):
            self.notifications.append(
                ReceivedNotification(
                    time.monotonic(), alert.get("status"), alert["labels"].get("alertname")
                )
            )

    def received(self, alert_name, status, since=0.0):
        """The first notification of `alert_name` in `status` received after `since`, or None."""
        for notification in list(self.notifications):
            if (
                notification.alert_names == alert_name
                and notification.status == status
                and notification.received_at >= since
            ):
                return notification
        return None

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def scale_duration(text, factor):
    """A Prometheus duration ("5m", "1h30m") divided by `factor`, in whole seconds (at least 1)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    seconds = sum(
        float(number) * units[unit]
        for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    )
    return f"{max(1, round(seconds / factor))}s"


def compress_rule_time(groups_document, factor):
    """The rule groups with every range, `for` and interval divided by `factor`: the same rules
    and thresholds, on a clock that runs `factor` times faster (a 5m window becomes 5 s at 60)."""
    ranges = re.compile(r"\[(\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+\]|\[([^\]:]+):([^\]]*)\]")

    def scale_range(match):
        if match.group(2) is not None:  # a subquery [range:resolution]
            resolution = scale_duration(match.group(3), factor) if match.group(3) else ""
            return f"[{scale_duration(match.group(2), factor)}:{resolution}]"
        return f"[{scale_duration(match.group(0)[1:-1], factor)}]"

    for group in groups_document["groups"]:
        if "interval" in group:
            group["interval"] = scale_duration(group["interval"], factor)
        for rule in group["rules"]:
            rule["expr"] = ranges.sub(scale_range, str(rule["expr"]))
            if "for" in rule:
                rule["for"] = scale_duration(rule["for"], factor)
            if "keep_firing_for" in rule:
                rule["keep_firing_for"] = scale_duration(rule["keep_firing_for"], factor)
    return groups_document


class Stack:
    """The whole topology: `with Stack(...) as stack:` starts it, leaving the block stops it.

    `rule_time_factor` runs the alert rules on a faster clock (compress_rule_time) with a
    one-second scrape and evaluation, so an alert the production rules raise after minutes is
    raised in seconds; 1 keeps the project's rules and intervals as they are.
    """

    def __init__(self, instances=3, rule_time_factor=1, directory=None, settings=None):
        missing = missing_programs()
        if missing:
            raise RuntimeError(f"missing programs: apt-get install {' '.join(missing)}")
        self.instance_count = instances
        self.rule_time_factor = rule_time_factor
        # The instances' variables beyond INSTANCE_SETTINGS (a drill's shorter limits).
        self.settings = dict(settings or {})
        self.directory = Path(directory or tempfile.mkdtemp(prefix="orders-stack-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._exit = ExitStack()
        if directory is None:  # a temporary directory of its own: removed when it stops
            self._exit.callback(shutil.rmtree, self.directory, ignore_errors=True)
        # PostgreSQL runs as the postgres user: it must reach its directory inside this one.
        self.directory.chmod(0o711)
        self.metrics_token = "stack-metrics-token-" + os.urandom(8).hex()
        self.api_key = None

    # --- start and stop ------------------------------------------------------------------------
    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self._exit.close()

    def _start(self):
        postgres_directory = self.directory / "postgres"
        postgres_directory.mkdir()
        self.primary = PostgresServer("primary", postgres_directory)
        self.replica = PostgresServer("replica", postgres_directory)
        if self.primary.run_as is not None:
            os.chown(postgres_directory, self.primary.run_as.pw_uid, self.primary.run_as.pw_gid)
        self.primary.initialise_primary()
        self.primary.start()
        self._exit.callback(self.primary.stop, "immediate")
        self.primary.execute("CREATE DATABASE orders", database="postgres")
        self.primary.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.replica.initialise_replica_of(self.primary)
        self.replica.start()
        self._exit.callback(self.replica.stop, "immediate")

        self.redis = Program(
            "redis",
            [PROGRAMS["redis-server"], "--port", str(free_port()), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            self.directory / "redis.log",
        )  # fmt: skip
        self.redis.port = int(self.redis.command[2])
        self.redis.start()
        self._exit.callback(self.redis.stop)

        self.load_balancer_port = free_port()
        self.load_balancer_stats_port = free_port()
        self.environment = self._service_environment()
        self.instances = [
            WebInstance(f"web{number}", self.environment, self.directory / f"web{number}.log")
            for number in range(1, self.instance_count + 1)
        ]
        # Monitoring first, as soon as every address is known: Prometheus hands its first targets
        # to the scrapers only seconds after it starts, time the database and the instances
        # below then take instead of adding to.
        self.alert_receiver = AlertReceiver(self.directory / "alerts.jsonl")
        self.alert_receiver.start()
        self._exit.callback(self.alert_receiver.stop)
        self._start_alertmanager()
        self._start_prometheus()
        self._prepare_database()
        for instance in self.instances:
            self._exit.callback(instance.stop)
        with ThreadPoolExecutor(len(self.instances)) as starting:
            list(starting.map(WebInstance.start, self.instances))
        self._start_load_balancer()

    def _service_environment(self):
        load_balancer = f"127.0.0.1:{self.load_balancer_port}"
        return project_environment(
            **INSTANCE_SETTINGS,
            **self.settings,
            DJANGO_SETTINGS_MODULE=STACK_SETTINGS,
            DJANGO_CSRF_TRUSTED_ORIGINS=f"http://{load_balancer},http://localhost:"
            f"{self.load_balancer_port}",
            DATABASE_URL=self.primary.url(),
            DATABASE_REPLICA_URLS=self.replica.url(),
            REDIS_URL=f"redis://127.0.0.1:{self.redis.port}/0",
            METRICS_TOKEN=self.metrics_token,
            PROMETHEUS_MULTIPROC_DIR=None,
        )

    def manage(self, *arguments, timeout=300):
        completed = run_manage(*arguments, environment=self.environment, timeout=timeout)
        if completed.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(arguments)}:\n{completed.stderr[-4000:]}")
        return completed.stdout

    def _prepare_database(self):
        """The release steps of docs/deployment.md: migrate, demo data and an API key."""
        self.manage("migrate", "--noinput")
        self.manage(
            "seed_demo", "--orgs", "2", "--customers", "50", "--products", "40", "--orders", "300"
        )
        issued = self.manage("demo_api_key", "--base-url", self.url, "--name", "make stack")
        self.api_key = issued.strip().splitlines()[-1]

    def _start_load_balancer(self):
        self.haproxy, self.haproxy_runtime = load_balancer(
            self.directory,
            self.load_balancer_port,
            self.load_balancer_stats_port,
            slots=len(self.instances),
        )
        self.haproxy.start()
        self._exit.callback(self.haproxy.stop)
        for number, instance in enumerate(self.instances, start=1):
            self.haproxy_runtime.place(f"web{number}", instance.address)
        if not wait_until(
            lambda: set(self.haproxy_runtime.server_states().values()) == {"UP"}, START_SECONDS
        ):
            raise RuntimeError(f"HAProxy servers: {self.haproxy_runtime.server_states()}")

    def _start_alertmanager(self):
        configuration = yaml_files.load(ALERTMANAGER_CONFIG)
        receiver_name = configuration["route"]["receiver"]
        for receiver in configuration["receivers"]:
            if receiver["name"] == receiver_name:
                receiver["webhook_configs"] = [
                    {"url": self.alert_receiver.url, "send_resolved": True}
                ]
        if self.rule_time_factor != 1:
            route = configuration["route"]
            for key in ("group_wait", "group_interval", "repeat_interval"):
                if key in route:
                    route[key] = scale_duration(route[key], self.rule_time_factor)
        path = self.directory / "alertmanager.yml"
        path.write_text(yaml.safe_dump(configuration, sort_keys=False))
        self.alertmanager_port = free_port()
        self.alertmanager = Program(
            "alertmanager",
            [
                PROGRAMS["alertmanager"],
                f"--config.file={path}",
                f"--storage.path={self.directory / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            self.directory / "alertmanager.log",
            port=self.alertmanager_port,
            ready_path="/-/ready",
        )
        self.alertmanager.start()
        self._exit.callback(self.alertmanager.stop)

    def _start_prometheus(self):
        configuration = yaml_files.load(PROMETHEUS_CONFIG)
        if self.rule_time_factor != 1:
            configuration["global"]["scrape_interval"] = "1s"
            configuration["global"]["evaluation_interval"] = "1s"
        rule_files = []
        for pattern in configuration.get("rule_files", []):
            for source in sorted(PROMETHEUS_CONFIG.parent.glob(pattern)):
                groups = compress_rule_time(yaml_files.load(source), self.rule_time_factor)
                target = self.directory / f"rules-{source.name}"
                target.write_text(yaml.safe_dump(groups, sort_keys=False))
                rule_files.append(str(target))
        configuration["rule_files"] = rule_files
        token_file = self.directory / "metrics-token"
        token_file.write_text(self.metrics_token)
        targets = {
            SERVICE_JOB: [instance.address for instance in self.instances],
            LOAD_BALANCER_JOB: [f"127.0.0.1:{self.load_balancer_stats_port}"],
        }
        for scrape in configuration["scrape_configs"]:
            # Static addresses where compose has its DNS names.
            scrape.pop("dns_sd_configs", None)
            scrape["static_configs"] = [{"targets": targets[scrape["job_name"]]}]
            if "authorization" in scrape:
                scrape["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
        configuration["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{self.alertmanager_port}"]}]}
            ]
        }
        path = self.directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(configuration, sort_keys=False))
        self.prometheus_port = free_port()
        self.prometheus = Program(
            "prometheus",
            [
                PROGRAMS["prometheus"],
                f"--config.file={path}",
                f"--storage.tsdb.path={self.directory / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                "--storage.tsdb.retention.time=1d",
            ],
            self.directory / "prometheus.log",
            port=self.prometheus_port,
            ready_path="/-/ready",
        )
        self.prometheus.start()
        self._exit.callback(self.prometheus.stop)

    # --- use -----------------------------------------------------------------------------------
    @property
    def url(self):
        return f"http://127.0.0.1:{self.load_balancer_port}"

    @property
    def prometheus_url(self):
        return f"http://127.0.0.1:{self.prometheus_port}"

    def query(self, expression):
        """Prometheus' instant vector for `expression`: [(labels, value), ...]."""
        answer = requests.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": expression}, timeout=10
        ).json()
        if answer["status"] != "success":
            raise RuntimeError(f"{expression}: {answer}")
        return [(item["metric"], float(item["value"][1])) for item in answer["data"]["result"]]

    def scrape_targets_up(self):
        """True once Prometheus has scraped every target of both jobs successfully."""
        answer = requests.get(f"{self.prometheus_url}/api/v1/targets", timeout=10).json()
        targets = answer["data"]["activeTargets"]
        return len(targets) == len(self.instances) + 1 and all(
            target["health"] == "up" for target in targets
        )

    def restart_redis(self):
        self.redis.stop()
        self.redis.start()

    def describe(self):
        lines = [
            f"load balancer   {self.url}/   admin {self.url}/admin/   API {self.url}/api/docs/",
            f"HAProxy stats   http://127.0.0.1:{self.load_balancer_stats_port}/",
            *(
                f"{instance.name:<15} http://{instance.address}/   log {instance.log_path}"
                for instance in self.instances
            ),
            f"PostgreSQL      primary {self.primary.url()}   replica {self.replica.url()}",
            f"Redis           redis://127.0.0.1:{self.redis.port}/0",
            f"Prometheus      {self.prometheus_url}/",
            f"Alertmanager    http://127.0.0.1:{self.alertmanager_port}/",
            f"alert webhook   {self.alert_receiver.url}   received: {self.alert_receiver.log_path}",
            f"API key         {self.api_key}",
            f"metrics token   {self.metrics_token}",
            f"directory       {self.directory}",
        ]
        return "\n".join(lines)


def main(arguments=None):
    parser = argparse.ArgumentParser(prog="make stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=3, help="gunicorn instances (3)")
    parser.add_argument(
        "--rule-time-factor",
        type=int,
        default=1,
        help="run the alert rules this many times faster, with 1 s scrapes (60: minutes become "
        "seconds); 1 keeps the project's intervals",
    )
    options = parser.parse_args(arguments)
    if options.instances < 1:
        parser.error("--instances must be at least 1")
    if options.rule_time_factor < 1:
        parser.error("--rule-time-factor must be at least 1")
    stopping = threading.Event()
    # Explicit handlers: a shell starting this in the background leaves SIGINT ignored.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    print("Starting the stack (PostgreSQL primary and replica, Redis, gunicorn, HAProxy, ...)")
    with Stack(instances=options.instances, rule_time_factor=options.rule_time_factor) as stack:
        print(stack.describe())
        print("\nCtrl-C stops everything.", flush=True)
        while not stopping.wait(0.5):
            pass
        print("\nStopping...", flush=True)
    print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
