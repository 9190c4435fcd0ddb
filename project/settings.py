"""All configuration of the orders service, read once from the environment.

Every variable is listed with its default and meaning in docs/configuration.md. A bad
value stops start-up with an ImproperlyConfigured naming the variable (project/environment.py).
"""

import os
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, REPORT_SAMPLE, SELF
from django.core.exceptions import ImproperlyConfigured

from apps.common.paths import CLUSTER_PATHS
from project.environment import Environment, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
env = Environment()

# --- Environment ---------------------------------------------------------------------------------

DJANGO_ENV = env.choice("DJANGO_ENV", ["development", "test", "production"], default="development")
IS_PRODUCTION = DJANGO_ENV == "production"
IS_DEVELOPMENT = DJANGO_ENV == "development"
IS_TEST = DJANGO_ENV == "test"

DEBUG = env.bool("DJANGO_DEBUG", default=IS_DEVELOPMENT)
if IS_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG: must not be true when DJANGO_ENV=production")

if IS_PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
else:
    # Only ever used on a developer machine or in tests; production requires its own.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="development-only-secret-key-" + "x" * 40)
    ALLOWED_HOSTS = env.list(
        "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])


def _git_sha():
    sha = os.environ.get("GIT_SHA", "")
    if sha:
        return sha
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607 - git from PATH
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip() or "unknown"


GIT_SHA = _git_sha()

# --- Applications and request path ---------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles so that runserver serves static files through WhiteNoise too.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # django-health-check 4.x: check classes, its template and `manage.py health_check`.
    "health_check",
    # Prometheus metrics of requests, database and cache; /metrics is apps.observability's view.
    "django_prometheus",
    "apps.observability",
    # Query inspector (N+1, duplicate and slow queries) on every connection; see apps/profiling.
    "apps.profiling",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before apps.tenants, whose admin replaces the library's organization-less key admin.
    "rest_framework_api_key",
    "apps.tenants",
    "apps.orders",
    # The scaling audit (manage.py scaling_audit, /admin/ops/audit/): reads every app above.
    "apps.audit",
    # Admin login lockouts after repeated failures; its attempts are in the admin, to unlock.
    "axes",
]

# Order matters; each entry says why it sits where it does.
MIDDLEWARE = [
    # HSTS, nosniff, referrer policy and the HTTPS redirect (probe paths exempt) come first.
    "django.middleware.security.SecurityMiddleware",
    # Static files are answered here, before any per-request work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Probes answer before host validation and sessions: the kubelet sends the pod IP as Host.
    "apps.observability.health.middleware.ProbeMiddleware",
    # Request id (X-Request-ID) and context for every log line, one access line per request;
    # outside everything that logs or measures, so their lines carry the request id too.
    "apps.observability.logging.middleware.RequestContextMiddleware",
    # Chunked bodies (no Content-Length) read and given a length, before silk, CSRF or a view
    # reads the body; inside the request context so that a body it cannot read is logged.
    "apps.api.middleware.TerminatedInputMiddleware",
    # Starts the Prometheus request clock; after the probes, so scrapes and probes are not traffic.
    # django-prometheus' middleware kept to the metrics ops read (observability/metrics).
    "apps.observability.metrics.middleware.PrometheusBeforeMiddleware",
    # (silk goes here when SILK_ENABLED, see below.) Query inspector on NPLUSONE_SAMPLE_RATE of the
    # requests: inside silk, so that silk's own queries are not findings; outside telemetry and
    # everything after it, so that session, auth and view queries are inspected too.
    "apps.profiling.middleware.QueryInspectorMiddleware",
    # Request statistics (apps/observability/telemetry); outside auth and sessions so that their
    # cost and their failures are measured too.
    "apps.observability.telemetry.middleware.TelemetryMiddleware",
    # Content-Security-Policy on what views answer (static files, probes and scrapes need none);
    # before every view and template, which read the request's nonce from it.
    "apps.common.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Validates Host against ALLOWED_HOSTS and appends slashes.
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: labels Prometheus request metrics with the resolved view and the final status.
    "apps.observability.metrics.middleware.PrometheusAfterMiddleware",
    # Turns a locked-out login into its 429; inside the Prometheus one, which then counts the 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.observability.ops.context_processors.deployment",
            ],
        },
    },
]

# --- Databases -----------------------------------------------------------------------------------

DB_POOL = env.bool("DB_POOL", default=True)
DB_POOL_MIN_SIZE = env.int("DB_POOL_MIN_SIZE", default=1, minimum=0)
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=10, minimum=1)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=10.0, minimum=0.1)
DB_CONN_MAX_AGE = env.int("DB_CONN_MAX_AGE", default=0, minimum=0)
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", default=5, minimum=1)
DB_SSLMODE = env.choice(
    "DB_SSLMODE",
    ["", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
    default="",
)
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=30000, minimum=0)
# Once a connection to a server has failed (apps/common/breakers.py), a checkout waits at most
# this long instead of DB_POOL_TIMEOUT; longer waits check for an outage this often.
DB_POOL_OUTAGE_TIMEOUT = env.float("DB_POOL_OUTAGE_TIMEOUT", default=0.5, minimum=0.05, maximum=5)
# Replicas (apps/common/replicas.py): reads fall back to the primary, so they wait little.
DB_REPLICA_CONNECT_TIMEOUT = env.int("DB_REPLICA_CONNECT_TIMEOUT", default=2, minimum=1)
DB_REPLICA_POOL_TIMEOUT = env.float(
    "DB_REPLICA_POOL_TIMEOUT", default=0.5, minimum=0.05, maximum=30
)
# A replica further behind than this is out of rotation (and reported degraded by /ready).
# Deployments that still set the name it had before replica routing keep their limit; the
# deployment files pass the new name only.
FORMER_VARIABLE_NAMES = {"DB_REPLICA_MAX_LAG_SECONDS": "HEALTH_REPLICA_MAX_LAG_SECONDS"}
DB_REPLICA_MAX_LAG_SECONDS = env.float(
    "DB_REPLICA_MAX_LAG_SECONDS",
    default=env.float(FORMER_VARIABLE_NAMES["DB_REPLICA_MAX_LAG_SECONDS"], default=30.0, minimum=0),
    minimum=0,
)
# Reports of an organization that wrote this recently read the primary (its own writes).
DB_REPLICA_STICKY_SECONDS = env.float(
    "DB_REPLICA_STICKY_SECONDS", default=5.0, minimum=0, maximum=3600
)
# How often each process checks that its replicas answer and how far behind they are.
DB_REPLICA_CHECK_SECONDS = env.float(
    "DB_REPLICA_CHECK_SECONDS", default=1.0, minimum=0.1, maximum=60
)
SQLITE_BUSY_TIMEOUT_MS = 5000
# django-prometheus' subclasses of the backends count queries, errors and connections;
# apps/observability/metrics/db_backends builds their cursor class once, not on every connect,
# and its PostgreSQL backend is the project's (apps/common/db_backends: breakers, timestamps).
PROMETHEUS_DATABASE_ENGINES = {
    "django.db.backends.sqlite3": "apps.observability.metrics.db_backends.sqlite3",
    "django.db.backends.postgresql": "apps.observability.metrics.db_backends.postgresql",
}
if DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
    raise ImproperlyConfigured(
        f"DB_POOL_MIN_SIZE: {DB_POOL_MIN_SIZE} is larger than DB_POOL_MAX_SIZE ({DB_POOL_MAX_SIZE})"
    )


def database_settings(url_config, alias="default"):
    """Complete a parsed DATABASE_URL with the pool, timeouts and SQLite concurrency settings."""
    is_replica = alias != "default"
    config = dict(url_config)
    options = dict(config.pop("OPTIONS", {}))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        if config["NAME"] != ":memory:" and not Path(config["NAME"]).is_absolute():
            config["NAME"] = str(BASE_DIR / config["NAME"])
        # Several gunicorn processes write to one file: WAL lets readers and one writer work at
        # once, the busy timeout waits for the lock instead of failing, and IMMEDIATE takes the
        # write lock at BEGIN so that a read-then-write transaction cannot deadlock.
        options.update(
            {
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS};"
                    "PRAGMA foreign_keys=ON;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            }
        )
        config.update(OPTIONS=options, CONN_MAX_AGE=DB_CONN_MAX_AGE)
        config["ENGINE"] = PROMETHEUS_DATABASE_ENGINES[config["ENGINE"]]
        return config

    options.setdefault(
        "connect_timeout", DB_REPLICA_CONNECT_TIMEOUT if is_replica else DB_CONNECT_TIMEOUT
    )
    if is_replica:
        # A replica host that vanishes (no RST) breaks its connections within seconds rather
        # than the kernel's retransmission timeout: data unacknowledged for this long, or idle
        # connections whose keepalive probes go unanswered, fail (reports then read the primary).
        options.setdefault("tcp_user_timeout", DB_REPLICA_CONNECT_TIMEOUT * 1000)
        options.setdefault("keepalives_idle", 5)
        options.setdefault("keepalives_interval", 1)
        options.setdefault("keepalives_count", 3)
    options.setdefault("application_name", "orders-service")
    if DB_SSLMODE:
        options["sslmode"] = DB_SSLMODE
    if DB_STATEMENT_TIMEOUT_MS:
        options["options"] = f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    if DB_POOL:
        # Django's native psycopg pool: it requires CONN_MAX_AGE = 0, and in 5.2 a "check"
        # key here raises TypeError; CONN_HEALTH_CHECKS does that job.
        options["pool"] = {
            "min_size": DB_POOL_MIN_SIZE,
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": DB_REPLICA_POOL_TIMEOUT if is_replica else DB_POOL_TIMEOUT,
            # psycopg_pool backs off up to 5 minutes between reconnect attempts by default, which
            # kept /ready failing ~20 s after a 40 s outage had ended. It doubles the wait after
            # each failure until this many seconds, then starts again at the next checkout: the
            # gap between two attempts stays within a few seconds.
            "reconnect_timeout": 5,
            "name": f"orders-{alias}",
        }
        conn_max_age = 0
    else:
        conn_max_age = DB_CONN_MAX_AGE
    config.update(OPTIONS=options, CONN_MAX_AGE=conn_max_age, CONN_HEALTH_CHECKS=True)
    config["ENGINE"] = PROMETHEUS_DATABASE_ENGINES[config["ENGINE"]]
    return config


DATABASES = {
    "default": database_settings(env.database_url("DATABASE_URL", default="sqlite:///db.sqlite3")),
}
for number, replica_url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    replica = database_settings(
        parse_database_url("DATABASE_REPLICA_URLS", replica_url),
        alias=f"replica_{number}",
    )
    # Tests see the replica as the primary: the test database exists only once.
    replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica_{number}"] = replica
DATABASE_ROUTERS = ["project.db_routers.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions --------------------------------------------------------------------------

REDIS_URL = env.redis_url("REDIS_URL", default="")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5, minimum=0.01)
# Every cache key starts with it: services (or test runs) sharing one Redis database never meet.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="orders")


def cache_settings(redis_url, key_prefix=REDIS_KEY_PREFIX):
    """Redis through django-redis when a URL is given, else this process's memory."""
    if not redis_url:
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "orders",
            }
        }
    return {
        "default": {
            # django-redis, counting gets, hits and misses for Prometheus. (Local memory keeps
            # Django's class: django-prometheus' one returns the default for falsy values.)
            "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": key_prefix,
            "OPTIONS": {
                # django-redis' client, logging an outage when it starts and ends and counting
                # every failed call (orders_cache_failures_total).
                "CLIENT_CLASS": "apps.observability.metrics.cache.ObservedClient",
                # The cache fails open: a Redis outage costs a timeout, never a 500.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "CONNECTION_POOL_KWARGS": {"health_check_interval": 30},
            },
        }
    }


CACHES = cache_settings(REDIS_URL)
# Not one ERROR and traceback per failed call: the client logs an outage's start and end.
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = False
# Sessions live in the database and are cached: with the cache down they still work.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- Authentication ------------------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if IS_TEST:
    # Hashing cost is irrelevant to what tests check and dominates their run time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "admin:login"
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Reverse proxies in front of gunicorn that append to X-Forwarded-For (the ingress: 1); the
# client's address, which login lockouts and API key failure limits count by, is the entry the
# outermost of them appended. 0: REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0, minimum=0)
# django-axes: AXES_FAILURE_LIMIT failed logins lock out the username (from any address) and the
# address (for any username) for AXES_COOLOFF_MINUTES; each further failure restarts the wait.
# Attempts are rows in the database, shared by all processes and kept across a Redis outage.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.tenants.brute_force.client_address"
AXES_LOCKOUT_CALLABLE = "apps.tenants.brute_force.admin_login_lockout_response"
# axes still logs each failure (WARNING); no start-up banner in every process.
AXES_VERBOSE = False

# --- Internationalisation ------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One way to write a time everywhere (the admin as the ops pages): project/formats/en/formats.py.
FORMAT_MODULE_PATH = ["project.formats"]

# --- Static files --------------------------------------------------------------------------------

# A CDN in front of the service: its URL (https://cdn.example.com/static/), whose origin pulls
# /static/ from WhiteNoise; the Content-Security-Policy below allows that origin.
STATIC_URL = env.str("DJANGO_STATIC_URL", default="/static/")
_static_parts = urlsplit(STATIC_URL)
if not STATIC_URL.endswith("/") or not (
    STATIC_URL.startswith("/")
    or (_static_parts.scheme in {"http", "https"} and _static_parts.netloc)
):
    raise ImproperlyConfigured(
        f"DJANGO_STATIC_URL: {STATIC_URL!r} is not a path or an http(s) URL ending with /"
    )
STATIC_ORIGIN = f"{_static_parts.scheme}://{_static_parts.netloc}" if _static_parts.netloc else ""
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cached forever) plus gzip and brotli copies, written by collectstatic.
    # Tests run without collectstatic, so they use plain names.
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if IS_TEST
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_MAX_AGE = 3600  # unhashed names only; hashed ones get a year
# Tests serve app static files straight from the apps, as runserver does in development.
WHITENOISE_USE_FINDERS = DEBUG or IS_TEST
WHITENOISE_KEEP_ONLY_HASHED_FILES = False

# --- HTTPS and security headers ------------------------------------------------------------------

# Probes and the metrics scrape arrive over plain HTTP from inside the cluster.
SECURE_REDIRECT_EXEMPT = [rf"^{path.lstrip('/')}/?$" for path in CLUSTER_PATHS]
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=IS_PRODUCTION)
# The load balancer terminates TLS and says so in X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int(
    "DJANGO_SECURE_HSTS_SECONDS", default=31536000 if IS_PRODUCTION else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = IS_PRODUCTION
SECURE_HSTS_PRELOAD = IS_PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = IS_PRODUCTION
CSRF_COOKIE_SECURE = IS_PRODUCTION
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles from this origin, or inline with the
# request's nonce (`request.csp_nonce`); nothing from another host. docs/deployment.md says how
# to extend it.
_static_sources = [STATIC_ORIGIN] if STATIC_ORIGIN else []
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF, *_static_sources],
        # A report quotes the start of what was refused: enough to find it.
        "script-src": [SELF, *_static_sources, NONCE, REPORT_SAMPLE],
        "style-src": [SELF, *_static_sources, NONCE, REPORT_SAMPLE],
        # Swagger UI and the admin draw some icons from data: URIs.
        "img-src": [SELF, *_static_sources, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        # Where browsers report violations (Sentry's security endpoint, say); empty: nowhere.
        "report-uri": env.str("CSP_REPORT_URI", default="") or None,
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_MAX_BODY_BYTES", default=1_048_576, minimum=1024)

# --- API -----------------------------------------------------------------------------------------

API_THROTTLE_RATE = env.throttle_rate("API_THROTTLE_RATE", default="1200/minute")
# Failed API key attempts per client address; beyond it the address gets 429 until the window ends.
API_KEY_FAILURE_RATE = env.throttle_rate("API_KEY_FAILURE_RATE", default="20/minute")
REST_FRAMEWORK = {
    # Organization API keys as `Authorization: Bearer <key>`; no sessions, so no CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.tenants.authentication.BearerAPIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.tenants.authentication.HasOrganizationAPIKey"],
    # API_THROTTLE_RATE per key, counted in the (shared) cache.
    "DEFAULT_THROTTLE_CLASSES": ["apps.tenants.throttling.APIKeyRateThrottle"],
    # DRF's browsable API (HTML for a browser) in development only; JSON only elsewhere.
    "DEFAULT_RENDERER_CLASSES": [
        "apps.api.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    # JSON only, limited to DJANGO_MAX_BODY_BYTES (413 beyond).
    "DEFAULT_PARSER_CLASSES": ["apps.api.parsers.LimitedJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apps.api.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.ApiCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["apps.api.filters.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "apps.orders.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Orders service API",
    "DESCRIPTION": (
        "Customers, products and orders of one organization, chosen by the API key. "
        'Every error is `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Observability -------------------------------------------------------------------------------

# Bearer token for /health-detailed, /stats and /metrics; empty accepts no token (staff only).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# A request at least this slow is counted and recorded as slow, and logged at WARNING with its
# heaviest queries.
LOG_SLOW_REQUEST_MS = env.int("LOG_SLOW_REQUEST_MS", default=1000, minimum=1)
# A query at least this slow is a "slow" finding of the query inspector (apps/profiling).
LOG_SLOW_QUERY_MS = env.int("LOG_SLOW_QUERY_MS", default=200, minimum=1)
# The same SQL from the same call site this many times with different parameters is an N+1.
NPLUSONE_THRESHOLD = env.int("NPLUSONE_THRESHOLD", default=5, minimum=2)
# Share of requests (0-1) the query inspector watches for N+1, duplicate and slow queries; their
# findings are written by the telemetry flusher (admin: Profiling > Query findings). Tests watch
# no request unless a test opts in: they use the no_nplusone marker instead.
NPLUSONE_SAMPLE_RATE = env.float(
    "NPLUSONE_SAMPLE_RATE",
    default=0.05 if IS_PRODUCTION else 0.0 if IS_TEST else 1.0,
    minimum=0.0,
    maximum=1.0,
)
# How often each process writes its request statistics; 0 starts no background flusher (the
# default in tests, which flush explicitly; workers still flush when they exit).
TELEMETRY_FLUSH_SECONDS = env.float(
    "TELEMETRY_FLUSH_SECONDS", default=0 if IS_TEST else 10, minimum=0, maximum=3600
)
# Request statistics, slow requests and error groups are pruned after this many days.
TELEMETRY_RETENTION_DAYS = env.int("TELEMETRY_RETENTION_DAYS", default=14, minimum=1)
# Opening a database connection in the gunicorn master breaks --preload with the pool.
PROMETHEUS_EXPORT_MIGRATIONS = False
# Request latency histogram bounds (seconds): fine around the SLO thresholds (100 ms to 1 s).
PROMETHEUS_LATENCY_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75),
    *(1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, float("inf")),
)
# One deadline for all checks of a /ready or /health-detailed answer (they run concurrently);
# the kubelet's timeoutSeconds must be above it.
HEALTH_CHECK_TIMEOUT_SECONDS = env.float(
    "HEALTH_CHECK_TIMEOUT_SECONDS", default=1.5, minimum=0.1, maximum=30
)

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LOG_LEVEL = env.choice("LOG_LEVEL", LOG_LEVELS, default="INFO")
# Which requests get an access line (RequestContextMiddleware): INFO every request, WARNING slow
# ones (LOG_SLOW_REQUEST_MS) and 5xx, ERROR 5xx only; never more than LOG_LEVEL lets through.
# Prometheus and the request statistics count every request whatever it says.
LOG_ACCESS_LEVEL = env.choice("LOG_ACCESS_LEVEL", ["INFO", "WARNING", "ERROR"], default="INFO")
# Access lines are rendered and written in batches at most this many seconds after their
# requests (slow requests and 5xx at once; apps/observability/logging/buffer.py); 0 writes each
# line as its request ends (the default in development and tests).
LOG_ACCESS_BUFFER_SECONDS = env.float(
    "LOG_ACCESS_BUFFER_SECONDS",
    default=0 if IS_DEVELOPMENT or IS_TEST else 1,
    minimum=0,
    maximum=60,
)
LOG_FORMAT = env.choice(
    "LOG_FORMAT", ["json", "console"], default="console" if IS_DEVELOPMENT else "json"
)
LOG_FILE = env.str("LOG_FILE", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "apps.observability.logging.formatting.structured_formatter",
            "log_format": LOG_FORMAT,
        },
        # The file is for machines: JSON lines whatever LOG_FORMAT says.
        "json": {
            "()": "apps.observability.logging.formatting.structured_formatter",
            "log_format": "json",
        },
    },
    "filters": {
        "skip_requests_with_access_line": {
            "()": "apps.observability.logging.formatting.SkipRequestsWithAccessLine"
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        # WatchedFileHandler reopens the file after logrotate moves it.
        **(
            {
                "file": {
                    "class": "logging.handlers.WatchedFileHandler",
                    "filename": LOG_FILE,
                    "formatter": "json",
                }
            }
            if LOG_FILE
            else {}
        ),
    },
    "root": {"handlers": ["console", *(["file"] if LOG_FILE else [])], "level": "WARNING"},
    "loggers": {
        "apps": {"level": LOG_LEVEL},
        # RequestContextMiddleware's access lines: LOG_ACCESS_LEVEL, or LOG_LEVEL if stricter.
        "apps.observability.access": {
            "level": max(LOG_LEVEL, LOG_ACCESS_LEVEL, key=LOG_LEVELS.index)
        },
        "project": {"level": LOG_LEVEL},
        "django": {"level": LOG_LEVEL if LOG_LEVEL != "DEBUG" else "INFO"},
        "gunicorn.error": {"level": LOG_LEVEL, "propagate": True},
        # RequestContextMiddleware writes one access line per request (with request id, route,
        # queries); gunicorn's access log (off in gunicorn.conf.py) and Django's 4xx/5xx lines
        # would repeat it.
        "gunicorn.access": {"level": "WARNING", "propagate": True},
        "django.request": {"filters": ["skip_requests_with_access_line"]},
        # runserver's request lines repeat the access line, and its own plain handler would
        # bypass redaction.
        "django.server": {"handlers": [], "level": "ERROR", "propagate": True},
    },
}

# Error tracking (apps/observability/logging/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float(
    "SENTRY_TRACES_SAMPLE_RATE", default=0.0, minimum=0.0, maximum=1.0
)
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default=DJANGO_ENV)
SENTRY_RELEASE = env.str("SENTRY_RELEASE", default="" if GIT_SHA == "unknown" else GIT_SHA)
if SENTRY_DSN:
    # Only with a DSN: sentry_sdk.init(dsn="") would still install the Django integration.
    from apps.observability.logging.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=SENTRY_RELEASE,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )

# --- Profiling (django-silk) --------------------------------------------------------------------

# Off means not installed at all (no app, middleware or URL): once silk has recorded a request it
# patches query execution for the life of the process.
SILK_ENABLED = env.bool("SILK_ENABLED", default=True)
# Share of requests silk records. Tests record nothing unless a test opts in: silk's own queries
# would otherwise count in every query-count assertion.
SILK_SAMPLE_PERCENT = env.float(
    "SILK_SAMPLE_PERCENT",
    default=1.0 if IS_PRODUCTION else 0.0 if IS_TEST else 100.0,
    minimum=0.0,
    maximum=100.0,
)
if SILK_ENABLED:
    from apps.common.ops_access import may_view_ops
    from apps.profiling.silk import should_record

    INSTALLED_APPS.append("silk")
    # Right after the Prometheus clock; before the query inspector so that silk's queries are not
    # findings, and outside auth (its UI needs sessions and users). silk's middleware with its
    # recording marked as its own work: not the request's queries or duration.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("apps.observability.metrics.middleware.PrometheusBeforeMiddleware") + 1,
        "apps.profiling.silk_middleware.SilkyMiddleware",
    )
    # silk's @silk_profile looks for this entry in MIDDLEWARE before it profiles anything.
    SILKY_MIDDLEWARE_CLASS = "apps.profiling.silk_middleware.SilkyMiddleware"
    # Its UI is open to anyone by default: staff holding observability.view_ops only (it shows
    # every tenant's request bodies and SQL).
    SILKY_AUTHENTICATION = True
    SILKY_AUTHORISATION = True
    SILKY_PERMISSIONS = may_view_ops
    # Sampling and the never-recorded paths (probes, metrics, stats, static, silk); silk ignores
    # SILKY_INTERCEPT_PERCENT when this is set.
    SILKY_INTERCEPT_FUNC = should_record
    # Request headers are masked by exact (lower-case) name, body keys and values by substring.
    SILKY_SENSITIVE_KEYS = {
        *("username", "api", "key", "signature"),  # silk's defaults
        *("authorization", "proxy-authorization", "cookie", "x-api-key", "x-csrftoken"),
        *("api_key", "apikey", "token", "password", "passwd", "secret", "credential"),
        *("sessionid", "session", "csrftoken", "csrfmiddlewaretoken"),
    }
    SILKY_HIDE_COOKIES = True
    # Bodies larger than this are not recorded at all.
    SILKY_MAX_REQUEST_BODY_SIZE = 16 * 1024
    SILKY_MAX_RESPONSE_BODY_SIZE = 16 * 1024
    # Kept by `manage.py prune_silk` (run it on a schedule); silk's own probabilistic garbage
    # collection on the request path has deadlocked on PostgreSQL, so it is off.
    SILKY_MAX_RECORDED_REQUESTS = 10_000
    SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 0
    SILKY_PYTHON_PROFILER = False
    SILKY_META = False
    # silk's pages need a few inline handlers and styles the site's policy refuses: allowed by
    # hash on /silk/ only. Inside CSPMiddleware, which writes the header on the way out.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("apps.common.middleware.CSPMiddleware") + 1,
        "apps.profiling.silk_csp.SilkContentSecurityPolicyMiddleware",
    )

# --- Scaling audit (manage.py scaling_audit, apps/audit) ----------------------------------------

# Instances (pods, hosts) of the service the audit sizes the connection budget for; its
# --instances option overrides it. The Kubernetes Job passes the HPA's maximum.
SCALING_INSTANCES = env.int("SCALING_INSTANCES", default=1, minimum=1)
# Share of the database's available connections above which the budget warns.
SCALING_AUDIT_CONNECTION_WARNING_PERCENT = env.float(
    "SCALING_AUDIT_CONNECTION_WARNING_PERCENT", default=80.0, minimum=1, maximum=100
)
# 5xx rate of the window that warns, and that fails the gate.
SCALING_AUDIT_ERROR_RATE_WARNING = env.float(
    "SCALING_AUDIT_ERROR_RATE_WARNING", default=0.01, minimum=0, maximum=1
)
SCALING_AUDIT_ERROR_RATE_CRITICAL = env.float(
    "SCALING_AUDIT_ERROR_RATE_CRITICAL", default=0.05, minimum=0, maximum=1
)
# Rate of requests at or above LOG_SLOW_REQUEST_MS that warns.
SCALING_AUDIT_SLOW_RATE_WARNING = env.float(
    "SCALING_AUDIT_SLOW_RATE_WARNING", default=0.05, minimum=0, maximum=1
)
# A route's p95 is judged against LOG_SLOW_REQUEST_MS once it has this many requests.
SCALING_AUDIT_MIN_ROUTE_REQUESTS = env.int(
    "SCALING_AUDIT_MIN_ROUTE_REQUESTS", default=20, minimum=1
)
# A table this large read mostly (above the percent) by sequential scans warns.
SCALING_AUDIT_LARGE_TABLE_ROWS = env.int(
    "SCALING_AUDIT_LARGE_TABLE_ROWS", default=100_000, minimum=1
)
SCALING_AUDIT_SEQUENTIAL_SCAN_PERCENT = env.float(
    "SCALING_AUDIT_SEQUENTIAL_SCAN_PERCENT", default=50.0, minimum=0, maximum=100
)
# Mean time (ms) of the order-number UPDATE, lock waits included, above which it warns.
SCALING_AUDIT_HOT_ROW_WAIT_MS = env.float("SCALING_AUDIT_HOT_ROW_WAIT_MS", default=50.0, minimum=0)
# How many times pg_locks is sampled (0.2 s apart) for lock waits.
SCALING_AUDIT_LOCK_SAMPLES = env.int("SCALING_AUDIT_LOCK_SAMPLES", default=5, minimum=1, maximum=50)
# One organization's share of the largest tenant table above which sharding warns.
SCALING_AUDIT_TENANT_SHARE_PERCENT = env.float(
    "SCALING_AUDIT_TENANT_SHARE_PERCENT", default=60.0, minimum=1, maximum=100
)
# Statements listed from pg_stat_statements (those slower than LOG_SLOW_QUERY_MS warn).
SCALING_AUDIT_STATEMENTS = env.int("SCALING_AUDIT_STATEMENTS", default=5, minimum=1, maximum=50)
# The Prometheus alert rules the audit validates (promtool check rules, when installed).
SCALING_AUDIT_ALERT_RULES = env.str(
    "SCALING_AUDIT_ALERT_RULES", default=str(BASE_DIR / "deploy" / "prometheus" / "rules.yml")
)

# --- Process model -------------------------------------------------------------------------------

PORT = env.int("PORT", default=8000, minimum=1, maximum=65535)
WEB_CONCURRENCY = env.int(
    "WEB_CONCURRENCY", default=min(4, 2 * (os.cpu_count() or 1) + 1), minimum=1
)
# gthread with 8 threads by default: the benchmark in bench/README.md chose it.
GUNICORN_THREADS = env.int("GUNICORN_THREADS", default=8, minimum=1)
if (
    DB_POOL
    and GUNICORN_THREADS > DB_POOL_MAX_SIZE
    and any(database["ENGINE"].endswith("postgresql") for database in DATABASES.values())
):
    raise ImproperlyConfigured(
        f"GUNICORN_THREADS: {GUNICORN_THREADS} threads per process exceed DB_POOL_MAX_SIZE "
        f"({DB_POOL_MAX_SIZE}); threads would wait for a database connection"
    )
