"""Fault drills on the production topology, run for real on this machine (tests/stack.py):
three gunicorn instances behind HAProxy (deploy/haproxy/haproxy.cfg), a PostgreSQL primary and a
streaming replica, Redis, Prometheus with the project's rules and Alertmanager notifying a local
webhook receiver.

One stack for the module; the drills run in order, each under bounded concurrent load through the
load balancer, and leave the stack whole for the next. Each prints its figures (requests,
failures, worst latency, seconds to detect and to recover); docs/deployment.md records them.
Prometheus runs the project's rules on a clock 60 times faster (tests/stack.py:
compress_rule_time) with one-second scrapes, so that alerts of minutes fire in seconds.

The stack brings its own PostgreSQL and Redis, so the module is `backend_independent`: CI runs it
in the SQLite pass only. Without its Debian programs the drills skip with the apt-get command,
unless REQUIRE_STACK=1 (set by .ci/run).
"""

import collections
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests

from tests import yaml_files
from tests.processes import PROJECT_DIR
from tests.stack import Stack, missing_programs, wait_until

from . import skip_without_stack_program

pytestmark = [pytest.mark.system, pytest.mark.backend_independent]

RULE_TIME_FACTOR = 60
CONCURRENCY = 6
# Each client of an open-ended load (one that runs until the drill has broken and repaired the
# stack) sends at most this many requests a second. A drill is about the requests in flight when
# something breaks, not about throughput: unpaced, the clients kept both cores busy for the whole
# module, and the rest of CI's SQLite pass waited for them.
PACED_REQUESTS_PER_SECOND = 10
# Drill 5's burst of errors, per client.
BURST_REQUESTS_PER_SECOND = 40
REQUEST_TIMEOUT_SECONDS = 10
# Bounds of every drill's load: it stops at whichever comes first.
MAX_REQUESTS = 4000
MAX_LOAD_SECONDS = 120
# The bound for drill 6: /health through the load balancer answers within 1 s.
HEALTH_BOUND_SECONDS = 1.0
SLOW_CLIENTS = 32
# How long Prometheus and Alertmanager may take, on the compressed clock, in the alert drills.
ALERT_WAIT_SECONDS = 90
# A replica further behind leaves the rotation; 30 s in production, shorter for drill 4.
REPLICA_MAX_LAG_SECONDS = 5


@pytest.fixture(scope="module")
def stack():
    missing = missing_programs()
    if missing:
        skip_without_stack_program(
            f"the stack's programs are missing: apt-get install {' '.join(missing)}"
        )
    with Stack(
        instances=3,
        rule_time_factor=RULE_TIME_FACTOR,
        settings={"DB_REPLICA_MAX_LAG_SECONDS": str(REPLICA_MAX_LAG_SECONDS)},
    ) as running:
        assert wait_until(running.scrape_targets_up, 60), "Prometheus never scraped every target"
        yield running


@pytest.fixture(scope="module")
def client_data(stack):
    """The demo organization's customers and products, for orders the load creates."""
    session = authorised_session(stack)
    customers = session.get(f"{stack.url}/api/v1/customers/?page_size=20", timeout=10).json()
    products = session.get(f"{stack.url}/api/v1/products/?page_size=40", timeout=10).json()
    return {
        "customers": [customer["id"] for customer in customers["results"]],
        "products": [product["id"] for product in products["results"]],
    }


def authorised_session(stack):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.api_key}"
    return session


@dataclass
class LoadResult:
    statuses: collections.Counter = field(default_factory=collections.Counter)
    statuses_by_path: collections.Counter = field(default_factory=collections.Counter)
    failures: list = field(default_factory=list)
    worst_latency: float = 0.0

    @property
    def requests(self):
        return sum(self.statuses.values()) + len(self.failures)

    def by_status_class(self):
        classes = collections.Counter()
        for status, count in self.statuses.items():
            classes[f"{status // 100}xx"] += count
        return dict(classes)

    def figures(self):
        statuses = dict(sorted(self.statuses.items()))
        return (
            f"requests={self.requests} failures={len(self.failures)} "
            f"worst_latency={self.worst_latency:.3f}s statuses={statuses}"
        )


class Load:
    """Concurrent clients sending `next_request()`'s requests through the load balancer until
    stopped, MAX_REQUESTS were sent or MAX_LOAD_SECONDS passed.

    A load without a `count` runs until stopped, each of its clients paced at
    `requests_per_second` (PACED_REQUESTS_PER_SECOND unless given) unless `paced` is False; one
    with a `count` sends its requests as fast as they are answered.
    A failure is a request that got no answer or a 5xx the drill did not ask for.
    """

    def __init__(
        self,
        stack,
        next_request,
        concurrency=CONCURRENCY,
        count=None,
        paced=None,
        requests_per_second=PACED_REQUESTS_PER_SECOND,
    ):
        self.stack = stack
        self.next_request = next_request
        self.concurrency = concurrency
        self.remaining = count or MAX_REQUESTS
        paced = count is None if paced is None else paced
        self.interval = 1 / requests_per_second if paced else 0.0
        self.result = LoadResult()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(concurrency)
        self.futures = []

    def _take_one(self):
        with self.lock:
            if self.remaining <= 0 or self.stopping.is_set():
                return False
            self.remaining -= 1
            return True

    def _client(self, deadline):
        session = authorised_session(self.stack)
        next_start = time.monotonic()
        while time.monotonic() < deadline and self._take_one():
            # Paced: wait for this client's next slot (stopping ends the wait).
            if self.stopping.wait(max(0.0, next_start - time.monotonic())):
                break
            method, path, options, failing_on_purpose = self.next_request()
            started = time.monotonic()
            next_start = started + self.interval
            try:
                response = session.request(
                    method, self.stack.url + path, timeout=REQUEST_TIMEOUT_SECONDS, **options
                )
            except requests.RequestException as error:
                outcome = error
            else:
                outcome = response.status_code
            elapsed = time.monotonic() - started
            with self.lock:
                self.result.worst_latency = max(self.result.worst_latency, elapsed)
                if isinstance(outcome, int) and (outcome < 500 or failing_on_purpose):
                    self.result.statuses[outcome] += 1
                    self.result.statuses_by_path[path.split("?")[0], outcome] += 1
                else:
                    self.result.failures.append((method, path, outcome))

    def __enter__(self):
        deadline = time.monotonic() + MAX_LOAD_SECONDS
        self.futures = [self.pool.submit(self._client, deadline) for _ in range(self.concurrency)]
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.wait()

    def wait(self):
        """Wait for every client to finish (its count reached, its deadline or stopped)."""
        for future in self.futures:
            future.result()
        self.pool.shutdown()
        return self.result


def write_order(client_data, number):
    """An order of one product, with an Idempotency-Key (safe for HAProxy to retry)."""
    customers, products = client_data["customers"], client_data["products"]
    body = {
        "customer": customers[number % len(customers)],
        "lines": [{"product": products[number % len(products)], "quantity": 1}],
    }
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    return "POST", "/api/v1/orders/", {"json": body, "headers": headers}, False


def read_mix(client_data=None):
    """Reads of the API, spread over two instances' worth of routes and status classes; with
    `client_data`, also orders created with an Idempotency-Key (safe for HAProxy to retry)."""
    counter = iter(range(10**9))

    def next_request():
        number = next(counter)
        if client_data and number % 5 == 0:
            return write_order(client_data, number)
        path = ("/api/v1/products/", "/api/v1/reports/sales/", "/api/v1/no-such-resource/")[
            number % 3
        ]
        return "GET", path, {}, False

    return next_request


def send(stack, next_request, count, concurrency=CONCURRENCY):
    """`count` requests, all sent and answered."""
    with Load(stack, next_request, concurrency=concurrency, count=count) as load:
        return load.wait()


def report(drill, result, **figures):
    extra = " ".join(f"{name}={value}" for name, value in figures.items())
    print(f"\n[drill] {drill}: {result.figures() if result else ''} {extra}".rstrip())


# --- 1. exact counts across instances -----------------------------------------------------------

STATS_PATH = "/stats?minutes=60"
# The load's routes in django-prometheus' `view` label.
LOAD_VIEWS = "api:product-list|api:report-sales|<unmatched>"


def stats_by_status_class(stack):
    answer = requests.get(
        stack.url + STATS_PATH,
        headers={"Authorization": f"Bearer {stack.metrics_token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text[:1000]
    answer = answer.json()
    return {status_class: count for status_class, count in answer["status"].items() if count}


def prometheus_by_status_class(stack):
    rows = stack.query(
        "sum by (status) (django_http_responses_total_by_status_view_method_total"
        f'{{job="orders-service", view=~"{LOAD_VIEWS}"}})'
    )
    classes = collections.Counter()
    for labels, value in rows:
        classes[f"{labels['status'][0]}xx"] += int(value)
    return dict(classes)


def prometheus_by_instance(stack):
    rows = stack.query(
        "sum by (instance) (django_http_responses_total_by_status_view_method_total"
        f'{{job="orders-service", view=~"{LOAD_VIEWS}"}})'
    )
    return {labels["instance"]: int(value) for labels, value in rows}


def counted_since(count, before):
    """What `count()` counts now beyond `before`, by status class (classes at 0 left out)."""
    now = count()
    return {key: now[key] - before.get(key, 0) for key in now if now[key] != before.get(key, 0)}


def test_drill_1_stats_and_prometheus_count_every_request_by_status_class(stack):
    stats_before = stats_by_status_class(stack)
    prometheus_before = prometheus_by_status_class(stack)
    result = send(stack, read_mix(), count=600)
    sent = result.by_status_class()

    def settled(count, before):
        return lambda: (counted := counted_since(count, before)) == sent and counted

    stats = wait_until(settled(lambda: stats_by_status_class(stack), stats_before), 30)
    prometheus = wait_until(
        settled(lambda: prometheus_by_status_class(stack), prometheus_before), 30
    )
    report("1 exact counts", result, stats=stats, prometheus=prometheus)
    assert result.failures == []
    assert stats == sent
    assert prometheus == sent


def test_drill_1_every_instance_served_part_of_the_load(stack):
    per_instance = prometheus_by_instance(stack)
    report("1 spread", None, per_instance=per_instance)
    assert sorted(per_instance) == sorted(instance.address for instance in stack.instances)
    assert all(count > 0 for count in per_instance.values())


# --- the autoscaler's signal --------------------------------------------------------------------

ADAPTER_RULES = PROJECT_DIR / "deploy" / "k8s" / "prometheus-adapter-config.yaml"
SLOW_REQUESTS = 6


def in_flight_per_instance(stack):
    """The Prometheus Adapter's query of the HPA's metric (deploy/k8s), per instance here where
    Kubernetes has pods."""
    rules = yaml_files.load_text(yaml_files.load(ADAPTER_RULES)["data"]["config.yaml"])
    (rule,) = (rule for rule in rules["rules"] if rule["name"]["as"] == "orders_requests_in_flight")
    expression = (
        rule["metricsQuery"]
        .replace("<<.LabelMatchers>>", 'job="orders-service"')
        .replace("<<.GroupBy>>", "instance")
    )
    return {labels["instance"]: value for labels, value in stack.query(expression)}


def test_autoscaler_metric_counts_the_requests_in_flight(stack):
    def slow_request():
        return "GET", "/drill/slow/?seconds=3", {}, False

    with Load(stack, slow_request, concurrency=SLOW_REQUESTS, count=SLOW_REQUESTS) as load:
        in_flight = wait_until(
            lambda: (
                (total := sum(in_flight_per_instance(stack).values())) == SLOW_REQUESTS and total
            ),
            10,
        )
        load.wait()
    idle = wait_until(lambda: sum(in_flight_per_instance(stack).values()) == 0, 10)
    report("autoscaler metric", load.result, in_flight_under_load=in_flight, idle_is_zero=idle)
    assert in_flight == SLOW_REQUESTS
    assert idle


# --- 2. rolling restart --------------------------------------------------------------------------


def wait_for_server_state(stack, slot, wanted, seconds=60):
    started = time.monotonic()
    reached = wait_until(
        lambda: stack.haproxy_runtime.server_states()[slot].startswith(wanted), seconds, step=0.05
    )
    assert reached, f"{slot} never {wanted}: {stack.haproxy_runtime.server_states()}"
    return time.monotonic() - started


def test_drill_2_rolling_restart_fails_no_request(stack, client_data):
    back_in_rotation = []
    retried_before = retried_by_load_balancer(stack)
    # Unpaced: requests arrive on every connection while each instance stops. (Paced, one run of
    # three had two requests wait out their 10 s timeout during a restart: see docs/deployment.md.)
    with Load(stack, read_mix(client_data), paced=False) as load:
        for number, instance in enumerate(stack.instances, start=1):
            time.sleep(0.5)
            instance.stop()
            instance.start()
            back_in_rotation.append(round(wait_for_server_state(stack, f"web{number}", "UP"), 2))
    result = load.result
    report(
        "2 rolling restart",
        result,
        seconds_back_in_rotation=back_in_rotation,
        load_balancer=dict(retried_by_load_balancer(stack) - retried_before),
    )
    assert result.failures == []


# --- 3. one instance killed ----------------------------------------------------------------------


def sessions_on(stack, slot):
    """Requests HAProxy has in progress on server `slot`."""
    return int(stack.haproxy_runtime.statistics()[slot]["scur"] or 0)


def retried_by_load_balancer(stack):
    """HAProxy's backend totals: connections retried, requests sent to another server."""
    backend = stack.haproxy_runtime.statistics()["BACKEND"]
    return collections.Counter(
        retries=int(backend["wretr"] or 0), redispatched=int(backend["wredis"] or 0)
    )


def test_drill_3_instance_killed_fails_at_most_its_in_flight_requests(stack, client_data):
    victim = stack.instances[0]
    retried_before = retried_by_load_balancer(stack)
    with Load(stack, read_mix(client_data)) as load:
        time.sleep(1)
        in_flight = sessions_on(stack, "web1")
        killed_at = time.monotonic()
        victim.kill()
        wait_for_server_state(stack, "web1", "DOWN")
        detected_at = time.monotonic()
        time.sleep(1)
        restarted_at = time.monotonic()
        victim.start()
        wait_for_server_state(stack, "web1", "UP")
        back_at = time.monotonic()
        time.sleep(1)
    result = load.result
    report(
        "3 SIGKILL",
        result,
        in_flight_on_killed=in_flight,
        seconds_to_detect=round(detected_at - killed_at, 2),
        seconds_from_restart_to_rotation=round(back_at - restarted_at, 2),
        seconds_out_of_rotation=round(back_at - killed_at, 2),
        load_balancer=dict(retried_by_load_balancer(stack) - retried_before),
    )
    assert len(result.failures) <= in_flight


# --- 4. replica stopped, then lagging -----------------------------------------------------------

REPORT_PATHS = ("/api/v1/reports/sales/", "/api/v1/reports/top-products/")


def reports_and_writes(client_data):
    """Reports, which read the replica, and orders written on the primary (the WAL the replica
    must replay)."""
    counter = iter(range(10**9))

    def next_request():
        number = next(counter)
        if number % 3 == 0:
            return write_order(client_data, number)
        return "GET", REPORT_PATHS[number % 2], {}, False

    return next_request


def report_statuses(result):
    return {
        status: count
        for (path, status), count in result.statuses_by_path.items()
        if path in REPORT_PATHS
    }


def replica_state(stack, state):
    """Instances whose replica_1 is in `state`, by Prometheus' last scrape."""
    rows = stack.query(f'orders_db_replica_state{{job="orders-service", state="{state}"}} == 1')
    return {labels["instance"] for labels, _ in rows}


def all_instances_see_replica(stack, state):
    return replica_state(stack, state) == {instance.address for instance in stack.instances}


def test_drill_4_replica_stopped_reports_stay_200_and_the_down_alert_reaches_the_webhook(
    stack, client_data
):
    receiver = stack.alert_receiver
    with Load(stack, reports_and_writes(client_data)) as load:
        time.sleep(1)
        stopped_at = time.monotonic()
        stack.replica.stop()
        out_of_rotation = wait_until(lambda: all_instances_see_replica(stack, "down"), 30)
        seconds_out = time.monotonic() - stopped_at
        fired = wait_until(
            lambda: receiver.received("OrdersReplicaDown", "firing", stopped_at),
            ALERT_WAIT_SECONDS,
        )
        started_at = time.monotonic()
        stack.replica.start()
        back = wait_until(lambda: all_instances_see_replica(stack, "in_rotation"), 60)
        seconds_back = time.monotonic() - started_at
    result = load.result
    report(
        "4 replica stopped",
        result,
        reports=report_statuses(result),
        seconds_to_leave_rotation=round(seconds_out, 1),
        seconds_to_alert=fired and round(fired.received_at - stopped_at, 1),
        seconds_back_in_rotation_after_start=round(seconds_back, 1),
    )
    assert (out_of_rotation, back) == (True, True)
    assert fired is not None
    assert result.failures == []
    assert set(report_statuses(result)) == {200}


def test_drill_4_replica_lagging_reports_stay_200_prometheus_shows_the_lag_and_its_alert_fires(
    stack, client_data
):
    receiver = stack.alert_receiver
    with Load(stack, reports_and_writes(client_data)) as load:
        paused_at = time.monotonic()
        stack.replica.execute("SELECT pg_wal_replay_pause()")
        lag = wait_until(
            lambda: (
                max((value for _, value in stack.query("orders_db_replica_lag_seconds")), default=0)
                > REPLICA_MAX_LAG_SECONDS
                and max(value for _, value in stack.query("orders_db_replica_lag_seconds"))
            ),
            60,
        )
        fired = wait_until(
            lambda: receiver.received("OrdersReplicaLagging", "firing", paused_at),
            ALERT_WAIT_SECONDS,
        )
        resumed_at = time.monotonic()
        stack.replica.execute("SELECT pg_wal_replay_resume()")
        back = wait_until(lambda: all_instances_see_replica(stack, "in_rotation"), 60)
        seconds_back = time.monotonic() - resumed_at
    result = load.result
    report(
        "4 replica lagging",
        result,
        reports=report_statuses(result),
        lag_seen_by_prometheus=lag,
        seconds_to_alert=fired and round(fired.received_at - paused_at, 1),
        seconds_back_in_rotation_after_resume=round(seconds_back, 1),
    )
    assert lag > REPLICA_MAX_LAG_SECONDS
    assert fired is not None
    assert back
    assert result.failures == []
    assert set(report_statuses(result)) == {200}


# --- 5. errors injected --------------------------------------------------------------------------

ERROR_ALERT = "OrdersErrorBudgetBurnFast"


def error_burst(fraction_failing):
    healthy = read_mix()
    counter = iter(range(10**9))

    def next_request():
        if next(counter) % 100 < fraction_failing * 100:
            return "GET", "/drill/error/", {}, True
        return healthy()

    return next_request


def test_drill_5_error_burst_alert_reaches_the_webhook_and_resolves(stack):
    receiver = stack.alert_receiver
    started = time.monotonic()
    # Faster than the other loads: the alert fires once the burst's errors outweigh, in the rule's
    # long window, the healthy requests of the drills before it (at their pace, that took three
    # times as long); past that, requests only wait for Prometheus and Alertmanager to act.
    with Load(
        stack, error_burst(0.5), concurrency=4, requests_per_second=BURST_REQUESTS_PER_SECOND
    ) as burst:
        firing = wait_until(
            lambda: receiver.received(ERROR_ALERT, "firing", started), ALERT_WAIT_SECONDS
        )
    burst_ended = time.monotonic()
    with Load(stack, read_mix(), concurrency=2) as after:
        resolved = wait_until(
            lambda: receiver.received(ERROR_ALERT, "resolved", burst_ended), ALERT_WAIT_SECONDS
        )
    report(
        "5 errors injected",
        burst.result,
        seconds_to_fire=firing and round(firing.received_at - started, 1),
        seconds_to_resolve=resolved and round(resolved.received_at - burst_ended, 1),
        requests_after_the_burst=after.result.requests,
        failures_after_the_burst=len(after.result.failures),
    )
    assert firing is not None
    assert resolved is not None


# --- 6. slow-body clients ------------------------------------------------------------------------


def open_slow_body_clients(port, count):
    """Connections that send a request's headers and one byte of its announced body."""
    clients = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(
            b"POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        clients.append(client)
    return clients


def worst_health_latency(url, probes=10, timeout=5):
    """The slowest of `probes` GET /health; infinite when one fails or times out."""
    worst = 0.0
    for _ in range(probes):
        started = time.monotonic()
        try:
            status = requests.get(f"{url}/health", timeout=timeout).status_code
        except requests.RequestException:
            status = None
        worst = max(worst, time.monotonic() - started)
        if status != 200:
            return float("inf")
        time.sleep(0.1)
    return worst


def health_latency_with_slow_clients(port, url, probes, timeout=5):
    clients = open_slow_body_clients(port, SLOW_CLIENTS)
    try:
        return worst_health_latency(url, probes, timeout)
    finally:
        for client in clients:
            client.close()


def test_drill_6_health_through_the_load_balancer_answers_while_slow_clients_hold_connections(
    stack,
):
    worst = health_latency_with_slow_clients(stack.load_balancer_port, stack.url, probes=10)
    # For comparison, not asserted: the same clients straight at one instance's gunicorn.
    direct = stack.instances[-1]
    worst_direct = health_latency_with_slow_clients(
        direct.port, f"http://{direct.address}", probes=2, timeout=2
    )
    wait_for_server_state(stack, f"web{len(stack.instances)}", "UP")
    report(
        "6 slow-body clients",
        None,
        clients=SLOW_CLIENTS,
        worst_health_seconds_through_lb=round(worst, 3),
        worst_health_seconds_direct=round(worst_direct, 3),
    )
    assert worst < HEALTH_BOUND_SECONDS


# --- 7. Redis stopped ----------------------------------------------------------------------------


def test_drill_7_redis_stopped_answers_no_5xx(stack, client_data):
    stack.redis.stop()
    try:
        result = send(stack, read_mix(client_data), count=300)
    finally:
        stack.redis.start()
    report("7 Redis stopped", result)
    assert result.failures == []
