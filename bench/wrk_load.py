"""wrk as the load client of the throughput benches, and the CPU each side used.

wrk is compiled and event-driven: on a small machine it leaves the server nearly all the CPU a
Python client would take. Each measurement reports the server's CPU (its process group, from
/proc), the client's (this process and its children: wrk) and `others`, the share of the machine
used by neither (other work, and PostgreSQL answering the bench's queries).
"""

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# wrk prints this line from its `done` hook; latencies are in microseconds.
REPORT_HOOK = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"seconds\": %.3f, \"p50\": %.0f, \"p95\": %.0f, " ..
    "\"p99\": %.0f, \"errors\": {\"connect\": %d, \"read\": %d, \"write\": %d, " ..
    "\"status\": %d, \"timeout\": %d}}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# wrk opens each thread's connections at once and starts its threads back to back. gunicorn's
# workers share one listening socket: a worker that wakes first can accept a whole burst, and its
# siblings idle for the whole run (rounds at half the rate, one worker busy and one idle). One
# connection per thread, each thread started a little after the last (wrk calls `init` before
# starting its thread), spreads them over the workers as a load balancer opening connections over
# time does. wrk's clock starts once every thread has started, but the requests served meanwhile
# count in its totals: rates read slightly high, alike for every server.
CONNECT_STAGGER_SECONDS = 0.01
STAGGER_HOOK = f"""
local bench_init = init
function init(args)
  os.execute("sleep {CONNECT_STAGGER_SECONDS}")
  if bench_init then bench_init(args) end
end
"""


def require_wrk():
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed as the load client: apt-get install -y wrk")


def run_wrk(url, connections, duration, script="", timeout=10):
    """One wrk run against `url` with one thread per connection, their starts staggered
    (STAGGER_HOOK); `script` is Lua run before the report hook (wrk's request, setup and init
    hooks). Returns requests, seconds, p50/p95/p99 in ms and the errors by kind ("status" counts
    answers other than 2xx and 3xx)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-") as lua:
        lua.write(script + STAGGER_HOOK + REPORT_HOOK)
        lua.flush()
        completed = subprocess.run(
            [
                "wrk",
                *("--threads", str(connections), "--connections", str(connections)),
                *("--duration", f"{max(1, round(duration))}s", "--timeout", f"{timeout}s"),
                *("--script", lua.name, url),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    line = next(ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_JSON "))
    report = json.loads(line.removeprefix("BENCH_JSON "))
    return {
        "requests": report["requests"],
        "seconds": report["seconds"],
        "p50": report["p50"] / 1000,
        "p95": report["p95"] / 1000,
        "p99": report["p99"] / 1000,
        "errors": {kind: count for kind, count in report["errors"].items() if count},
    }


def process_group_cpu_seconds(group, kernel_only=False):
    """CPU time used so far by the processes of one process group (the gunicorn server): user and
    system time, or with `kernel_only` system time alone (system calls: sockets, files)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields after "pid (comm)"
        if int(fields[2]) == group:
            ticks += (0 if kernel_only else int(fields[11])) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def machine_busy_seconds():
    """CPU time the whole machine has spent not idle, summed over cores."""
    with open("/proc/stat") as stat_file:
        values = [int(value) for value in stat_file.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS  # minus idle and iowait


def client_cpu_seconds():
    """CPU of this script and its exited children: the load client, whichever one runs."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def measure(load, server_group, *arguments, **keywords):
    """`load(*arguments, **keywords)` (run_wrk or a function alike), with requests/s, the server's
    CPU per request, the server's and the client's share of the machine, and `others`.

    On an oversubscribed machine `others` is no independent noise figure: other work fills what
    the server leaves.
    """
    before = (
        time.monotonic(),
        machine_busy_seconds(),
        process_group_cpu_seconds(server_group),
        client_cpu_seconds(),
        process_group_cpu_seconds(server_group, kernel_only=True),
    )
    result = load(*arguments, **keywords)
    elapsed = time.monotonic() - before[0]
    busy = machine_busy_seconds() - before[1]
    server = process_group_cpu_seconds(server_group) - before[2]
    client = client_cpu_seconds() - before[3]
    kernel = process_group_cpu_seconds(server_group, kernel_only=True) - before[4]
    capacity = elapsed * (os.cpu_count() or 1)
    result["rps"] = result["requests"] / result["seconds"]
    result["cpu_ms_per_request"] = 1000 * server / max(result["requests"], 1)
    result["kernel_ms_per_request"] = 1000 * kernel / max(result["requests"], 1)
    result["server_cpu"] = server / capacity
    result["client_cpu"] = client / capacity
    result["others"] = max(0.0, busy - server - client) / capacity
    return result
