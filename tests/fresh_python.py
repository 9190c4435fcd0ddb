"""Fresh Python processes for the tests, without paying a fresh interpreter for each.

Tests that check start-up (a bad variable stops it, a variable sets a setting) or prepare a
server's database run `python -c CODE` or `python manage.py ...` with an environment of their
own, and each needs a process that has never loaded the settings: they are module-level code,
read once. An interpreter that imports Django and the project from scratch costs ~0.7 s of CPU;
most of that is the same libraries every time.

So one helper process per test session (per xdist worker) imports those libraries once -
nothing that reads the settings or the environment on import, and nothing of the project - and
then forks one child per case. The child takes the case's environment, working directory and
arguments and runs the code or the script as the interpreter would: a fresh `__main__`, an
uncaught exception printed with exit status 1, SystemExit honoured, non-daemon threads joined and
atexit handlers run at exit. Its exit status, stdout and stderr come back as a CompletedProcess.
The project (`project`, `apps`) and the settings are only ever imported by a child, fresh.

tests.processes.run_python and run_manage are the way in.

Long-running programs start the same way (`spawn`): tests.processes.running_gunicorn forks its
gunicorn master from the helper, in a session of its own with its output in a log file, and the
workers the master forks inherit the preloaded libraries too. A server the tests start then
costs a fraction of the CPU of one started from a new interpreter (tests/project/test_gunicorn.py
still starts gunicorn as the shell does). The helper is the master's parent: it reaps it and
tells its exit status when asked (SpawnedProcess, as much of subprocess.Popen as the tests use).
"""

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

# Only the standard library at the top: the helper process imports this module too.
PROJECT_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Imported once by the helper process: libraries the project loads at start-up that neither read
# the settings nor the environment when imported (the helper checks that the settings stay
# unconfigured). prometheus_client (reads PROMETHEUS_MULTIPROC_DIR on import), sentry_sdk, silk
# and the project itself are left to each child.
PRELOADED_MODULES = (
    "django.conf",
    "django.core.management",
    "django.core.checks",
    "django.db.models",
    "django.urls",
    "django.forms",
    "django.contrib.admin",
    "django.test",
    "rest_framework.fields",
    "rest_framework.serializers",
    "django_filters",
    "environ",
    "structlog",
    "redis",
    "django_redis",
    "dns.asyncresolver",
    "psycopg",
    "psycopg_pool",
    "whitenoise.middleware",
    "health_check.checks",
)
NEVER_PRELOADED = (
    "project",
    "apps",
    "silk",
    "sentry_sdk",
    "prometheus_client",
    "django_prometheus",
)


class ForkingHelper:
    """The client side: starts the helper on first use and sends it one request at a time (from
    any thread)."""

    def __init__(self):
        self.helper = None
        self.lock = threading.Lock()
        atexit.register(self.close)

    def _start(self):
        from tests.processes import project_environment

        environment = project_environment(DJANGO_SETTINGS_MODULE=None)
        self.helper = subprocess.Popen(
            [PYTHON, "-c", "from tests.fresh_python import serve; serve()"],
            cwd=PROJECT_DIR,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.helper.stdout.readline()
        if ready.strip() != "ready":
            self.close()
            raise RuntimeError(f"the fresh-process helper did not start: {ready!r}")

    def _ask(self, request):
        with self.lock:
            if self.helper is None or self.helper.poll() is not None:
                self._start()
            self.helper.stdin.write(json.dumps(request) + "\n")
            self.helper.stdin.flush()
            answer = self.helper.stdout.readline()
        if not answer:
            raise RuntimeError("the fresh-process helper exited")
        return json.loads(answer)

    def run(self, arguments, environment, timeout):
        case = {"arguments": list(arguments), "environment": dict(environment), "timeout": timeout}
        result = self._ask(case)
        command = [PYTHON, *arguments]
        if result["timed_out"]:
            raise subprocess.TimeoutExpired(command, timeout, result["stdout"], result["stderr"])
        return subprocess.CompletedProcess(
            command, result["returncode"], result["stdout"], result["stderr"]
        )

    def close(self):
        if self.helper is not None and self.helper.poll() is None:
            self.helper.stdin.close()
            try:
                self.helper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.helper.kill()
                self.helper.wait()
        if self.helper is not None:
            self.helper.stdout.close()

    def spawn(self, arguments, environment, log_path, error_path=None):
        request = {
            "spawn": list(arguments),
            "environment": dict(environment),
            "log_path": str(log_path),
            "error_path": str(error_path or log_path),
        }
        return SpawnedProcess(self, self._ask(request)["pid"], [PYTHON, *arguments])

    def exit_status(self, pid):
        return self._ask({"exit_status_of": pid})["returncode"]


class SpawnedProcess:
    """A program `spawn` started: its pid (the leader of its own session and process group),
    poll() and wait() as subprocess.Popen's."""

    def __init__(self, helper, pid, args):
        self.helper, self.pid, self.args = helper, pid, args
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            self.returncode = self.helper.exit_status(self.pid)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)
        return self.returncode


_helper = ForkingHelper()


def run(arguments, environment, timeout):
    """As `python *arguments` (`-c CODE ...` or `SCRIPT ...`) in a fresh process in the project
    directory, with exactly `environment`; TimeoutExpired when it outlasts `timeout` seconds."""
    return _helper.run(arguments, environment, timeout)


def spawn(arguments, environment, log_path, error_path=None):
    """As `python *arguments` started in the background in the project directory, in a session
    of its own, with exactly `environment`, its output appended to `log_path` (its stderr to
    `error_path` if given); returns a SpawnedProcess at once."""
    return _helper.spawn(arguments, environment, log_path, error_path)


# --- The helper process ----------------------------------------------------------------------


def serve():
    """Preload, then answer each case (a JSON line on stdin) with a JSON line on stdout."""
    import importlib
    import shutil
    import tempfile

    for name in PRELOADED_MODULES:
        importlib.import_module(name)
    from django.conf import settings

    loaded = [name for name in sys.modules if name.split(".")[0] in NEVER_PRELOADED]
    if settings.configured or loaded:
        raise RuntimeError(f"preloading configured the settings or imported {loaded}")
    # The answers go through a private copy of stdout; the children get files as 0, 1 and 2.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    answers.write("ready\n")
    answers.flush()
    # Not a TemporaryDirectory: its clean-up at exit would run in every child too.
    directory = tempfile.mkdtemp(prefix="orders-fresh-python-")
    try:
        for number, line in enumerate(sys.stdin):
            request = json.loads(line)
            if "exit_status_of" in request:
                result = {"returncode": _exit_status_of(request["exit_status_of"])}
            elif "spawn" in request:
                result = {"pid": _spawn(request)}
            else:
                result = _run_case(request, os.path.join(directory, str(number)))
            answers.write(json.dumps(result) + "\n")
            answers.flush()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# pid -> exit status of the spawned programs this helper has reaped.
_exited = {}


def _spawn(request):
    sys.stdout.flush()
    sys.stderr.flush()
    # The answer waits for the child's own session: a test may signal its group at once.
    in_session, session_made = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns
        os.close(in_session)
        _spawned_child(request, session_made)
    os.close(session_made)
    os.read(in_session, 1)
    os.close(in_session)
    return pid


def _exit_status_of(pid):
    """The spawned program's exit status, or None while it runs (reaping it once it ended)."""
    if pid not in _exited:
        try:
            finished, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return -1  # never this helper's child
        if not finished:
            return None
        _exited[pid] = os.waitstatus_to_exitcode(status)
    return _exited[pid]


def _run_case(case, output_prefix):
    import signal
    import time

    stdout_path, stderr_path = f"{output_prefix}.out", f"{output_prefix}.err"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never returns
        _child(case, stdout_path, stderr_path)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # as the child does: whichever runs first
    deadline = time.monotonic() + case["timeout"]
    timed_out = False
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    result = {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out}
    for stream, path in (("stdout", stdout_path), ("stderr", stderr_path)):
        with open(path, encoding="utf-8", errors="replace") as output:
            result[stream] = output.read()
        os.unlink(path)
    return result


def _child(case, stdout_path, stderr_path):
    # A case that times out is killed with whatever it started (the helper may have made the
    # child its group's leader first).
    with contextlib.suppress(PermissionError):
        os.setpgid(0, 0)
    _become(case["arguments"], case["environment"], stdout_path, stderr_path)


def _spawned_child(request, session_made):
    os.setsid()  # as subprocess.Popen(start_new_session=True): signalled as a group
    os.close(session_made)  # tells the helper
    _become(request["spawn"], request["environment"], request["log_path"], request["error_path"])


def _become(arguments, environment, stdout_path, stderr_path):
    """In a forked child: `python *arguments` with this environment and output, then exit."""
    status = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, stdout_path), (2, stderr_path)):
            output = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(output, fd)
            os.close(output)
        # Nothing of the helper's stays open in the program (its answers pipe).
        for descriptor in os.listdir("/proc/self/fd"):
            if int(descriptor) > 2:
                with contextlib.suppress(OSError):
                    os.close(int(descriptor))
        os.chdir(PROJECT_DIR)
        os.environ.clear()
        os.environ.update(environment)
        status = _run_as_interpreter(arguments)
    except BaseException:
        import traceback

        traceback.print_exc()  # to the program's stderr, or else the helper's
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _run_as_interpreter(arguments):
    """What `python *arguments` does: run the code or the script as __main__, then shut down."""
    import atexit
    import runpy
    import threading
    import types

    status = 0
    try:
        if arguments[0] == "-c":
            sys.argv = ["-c", *arguments[2:]]
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(arguments[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(arguments)
            runpy.run_path(arguments[0], run_name="__main__")
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    except BaseException:
        kind, error, traceback = sys.exc_info()
        # The traceback starts where the interpreter's would: in the code or the script.
        while traceback is not None and traceback.tb_frame.f_code.co_filename in (
            __file__,
            runpy.__file__,
        ):
            traceback = traceback.tb_next
        sys.excepthook(kind, error, traceback)
        status = 1
    # Interpreter shutdown: wait for non-daemon threads, then the atexit handlers.
    threading._shutdown()
    atexit._run_exitfuncs()
    return status


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
