"""The Dockerfile, .dockerignore and docker-compose.yml: linted, validated and checked for the
properties production relies on (non-root, probes, no migration at start, real variables)."""

import fnmatch
import json
import re
import shlex
import subprocess

import pytest

from tests import yaml_files

from . import PROJECT_ROOT, gunicorn_graceful_timeout, settings_variables, tool_path

pytestmark = pytest.mark.backend_independent

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"

# Variables the image fixes, so the compose file does not pass them: GIT_SHA is a build
# argument, static files are collected into the default DJANGO_STATIC_ROOT at build time, and
# the image exposes and health-checks the default PORT.
IMAGE_FIXED_VARIABLES = {"GIT_SHA", "DJANGO_STATIC_ROOT", "PORT"}


# --- Dockerfile parsing --------------------------------------------------------------------------


def dockerfile_instructions():
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    instructions = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_stages():
    """Stages in order: {"name", "parent", "instructions"}; parent is an earlier stage or None."""
    stages = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            words = arguments.split()
            image = next(word for word in words if not word.startswith("--"))
            name = words[-1] if len(words) >= 3 and words[-2].upper() == "AS" else None
            parent = next((stage for stage in stages if stage["name"] == image), None)
            stages.append({"name": name, "image": image, "parent": parent, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, arguments))
    return stages


def stage_chain_instructions(stage):
    """The stage's instructions preceded by those of the stages it is built FROM."""
    inherited = stage_chain_instructions(stage["parent"]) if stage["parent"] else []
    return inherited + stage["instructions"]


def final_stage():
    return dockerfile_stages()[-1]


def final_environment():
    """ENV values the final image carries, inherited stages included."""
    environment = {}
    for keyword, arguments in stage_chain_instructions(final_stage()):
        if keyword == "ENV":
            for assignment in shlex.split(arguments):
                name, _, value = assignment.partition("=")
                environment[name] = value
    return environment


def exec_form(arguments):
    """The argv of a CMD/ENTRYPOINT/HEALTHCHECK CMD in JSON (exec) form."""
    return json.loads(arguments[arguments.index("[") :])


def final_instructions(keyword):
    return [args for kw, args in stage_chain_instructions(final_stage()) if kw == keyword]


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    completed = subprocess.run(
        [tool_path("hadolint"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_final_stage_copies_the_virtualenv_from_a_builder_stage():
    stages = dockerfile_stages()
    earlier_names = {stage["name"] for stage in stages[:-1]}
    copied_from = [
        match.group(1)
        for keyword, arguments in final_stage()["instructions"]
        if keyword == "COPY" and (match := re.search(r"--from=(\S+)", arguments))
    ]
    assert len(stages) >= 2
    assert copied_from, "the final stage copies nothing from a build stage"
    assert set(copied_from) <= earlier_names


def test_base_images_are_pinned_slim_python_3_12():
    external_images = [stage["image"] for stage in dockerfile_stages() if stage["parent"] is None]
    assert external_images
    for image in external_images:
        assert re.fullmatch(r"python:3\.12(\.\d+)?-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), (
            image
        )


def test_builder_installs_the_pinned_production_requirements():
    builder_runs = [
        arguments
        for stage in dockerfile_stages()[:-1]
        for keyword, arguments in stage["instructions"]
        if keyword == "RUN"
    ]
    assert any(
        "pip install" in run and re.search(r"-r \S*requirements/prod\.txt", run)
        for run in builder_runs
    ), builder_runs


def test_final_stage_runs_as_a_numeric_non_root_user():
    users = final_instructions("USER")
    assert users, "the final stage never switches away from root"
    user = users[-1].split(":")[0]
    # Kubernetes' runAsNonRoot can only verify a numeric user.
    assert user.isdigit(), f"USER {users[-1]} is not numeric"
    assert int(user) != 0


def test_healthcheck_calls_the_liveness_probe_with_urllib():
    healthchecks = final_instructions("HEALTHCHECK")
    assert len(healthchecks) == 1
    command = " ".join(exec_form(healthchecks[0]))
    assert re.search(r"/health(?![-\w])", command), command
    assert "urllib" in command
    assert "curl" not in command


def test_static_files_are_collected_at_build_time():
    runs = final_instructions("RUN")
    assert any("manage.py collectstatic" in run and "--noinput" in run for run in runs), runs


def test_throwaway_build_secret_is_not_baked_into_the_image():
    for stage in dockerfile_stages():
        for keyword, arguments in stage["instructions"]:
            if keyword in {"ENV", "ARG"}:
                assert "DJANGO_SECRET_KEY" not in arguments, f"{keyword} {arguments}"


def test_container_start_does_not_run_migrations():
    start_commands = final_instructions("CMD") + final_instructions("ENTRYPOINT")
    assert start_commands
    for command in start_commands:
        assert "migrate" not in command


def test_container_starts_gunicorn_with_the_wsgi_application():
    assert not final_instructions("ENTRYPOINT")
    command = exec_form(final_instructions("CMD")[-1])
    assert command[0] == "gunicorn"
    assert "project.wsgi:application" in command


def test_image_runs_in_production_mode():
    assert final_environment().get("DJANGO_ENV") == "production"


def test_python_writes_no_bytecode_and_does_not_buffer_output():
    environment = final_environment()
    assert environment.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert environment.get("PYTHONUNBUFFERED") == "1"


def test_git_sha_build_argument_becomes_an_environment_variable():
    arguments = [args.split("=")[0] for args in final_instructions("ARG")]
    assert "GIT_SHA" in arguments
    assert final_environment().get("GIT_SHA") in {"${GIT_SHA}", "$GIT_SHA"}


def test_image_exposes_port_8000():
    assert "8000" in " ".join(final_instructions("EXPOSE")).split()


# --- .dockerignore -------------------------------------------------------------------------------


def dockerignore_patterns():
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def is_dockerignored(path):
    """Whether the build context leaves out `path` (Docker semantics: a pattern matching a parent
    directory excludes everything below it, `**/` matches any depth, the last match wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for pattern in dockerignore_patterns():
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        variants = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(prefix, variant) for prefix in prefixes for variant in variants):
            ignored = not negated
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "staticfiles/admin/css/base.css",
        "db.sqlite3",
        "db.sqlite3-wal",
        "apps/__pycache__/apps.cpython-312.pyc",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        ".coverage",
        "htmlcov/index.html",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_build_context(path):
    assert is_dockerignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "requirements/prod.txt",
        "manage.py",
        "gunicorn.conf.py",
        "project/settings.py",
        "apps/observability/health/views.py",
        "templates/admin/base_site.html",
    ],
)
def test_dockerignore_keeps_what_the_image_needs(path):
    assert not is_dockerignored(path)


# --- docker-compose.yml --------------------------------------------------------------------------


def compose():
    return yaml_files.load(COMPOSE_FILE)


def compose_service(name):
    return compose()["services"][name]


def interpolation_default(value):
    """The value compose uses when the variable is unset: `${NAME:-default}` gives default."""
    match = re.fullmatch(r"\$\{\w+:?-(.*)\}", str(value))
    return match.group(1) if match else str(value)


def test_compose_file_validates_against_the_compose_spec():
    completed = subprocess.run(
        [
            tool_path("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_compose_defines_web_postgres_and_redis():
    assert {"web", "postgres", "redis"} <= set(compose()["services"])


def test_web_starts_after_postgres_and_redis_are_healthy():
    depends_on = compose_service("web")["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_backing_service_has_a_healthcheck(service):
    healthcheck = compose_service(service).get("healthcheck", {})
    assert healthcheck.get("test"), f"{service} has no healthcheck command"
    assert not healthcheck.get("disable", False)


@pytest.mark.parametrize(("service", "major"), [("postgres", 16), ("redis", 7)])
def test_backing_service_runs_the_expected_major_version(service, major):
    image = compose_service(service)["image"]
    assert re.fullmatch(rf"{service}:{major}([.-][\w.-]*)?", image), image


def test_postgres_data_lives_on_a_named_volume():
    named_volumes = set(compose().get("volumes") or {})
    data_volumes = [
        volume.split(":")[0]
        for volume in compose_service("postgres").get("volumes", [])
        if volume.split(":")[1] == "/var/lib/postgresql/data"
    ]
    assert data_volumes
    assert set(data_volumes) <= named_volumes


def test_web_receives_only_variables_that_settings_reads():
    unknown = set(compose_service("web")["environment"]) - settings_variables()
    assert not unknown, f"project/settings.py never reads {sorted(unknown)}"


def test_web_receives_every_variable_that_settings_reads():
    missing = (
        settings_variables() - IMAGE_FIXED_VARIABLES - set(compose_service("web")["environment"])
    )
    assert not missing, f"docker-compose.yml does not pass {sorted(missing)} to web"


def test_web_does_not_redirect_to_https_without_a_tls_proxy():
    value = compose_service("web")["environment"]["DJANGO_SECURE_SSL_REDIRECT"]
    assert interpolation_default(value).lower() in {"false", "0", "no", "off"}


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("web", "DJANGO_SECRET_KEY"),
        ("web", "METRICS_TOKEN"),
        ("postgres", "POSTGRES_PASSWORD"),
    ],
)
def test_secret_defaults_are_overridable_and_marked_local_only(service, variable):
    value = compose_service(service)["environment"][variable]
    assert value.startswith(f"${{{variable}:-"), value
    assert "local-only" in interpolation_default(value)


def test_web_does_not_run_migrations_on_start():
    web = compose_service("web")
    assert "migrate" not in str(web.get("command", ""))
    assert "migrate" not in str(web.get("entrypoint", ""))
    assert "migrate" not in web.get("depends_on", {})


def test_migrations_run_from_an_opt_in_one_shot_service():
    migrate = compose_service("migrate")
    assert migrate.get("profiles"), "the migrate service must only run when asked for"
    assert "manage.py migrate" in " ".join(migrate["command"])
    assert migrate.get("restart", "no") == "no"


def test_web_stop_grace_period_outlasts_gunicorn_graceful_timeout():
    period = compose_service("web")["stop_grace_period"]
    units = {"h": 3600, "m": 60, "s": 1}
    seconds = sum(int(amount) * units[unit] for amount, unit in re.findall(r"(\d+)([hms])", period))
    assert seconds > gunicorn_graceful_timeout()
