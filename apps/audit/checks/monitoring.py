"""Logging and monitoring: structured logs, metrics access, error tracking, alert rules."""

import shutil
import subprocess
from pathlib import Path

import yaml
from django.conf import settings

from apps.audit.report import CRITICAL, INFO, WARNING, Finding

PROMTOOL_TIMEOUT_SECONDS = 20


def _logs():
    findings = []
    if settings.LOG_FORMAT == "json":
        findings.append(
            Finding(
                "logs:json",
                INFO,
                "Logs are JSON lines",
                "LOG_FORMAT=json: one JSON object per line with the request id, route and "
                "timings, ready for a log pipeline.",
            )
        )
    else:
        findings.append(
            Finding(
                "logs:json",
                WARNING if settings.IS_PRODUCTION else INFO,
                "Logs are not JSON",
                f"LOG_FORMAT={settings.LOG_FORMAT} (DJANGO_ENV={settings.DJANGO_ENV}): log "
                "shippers cannot parse the fields.",
                "Set LOG_FORMAT=json (the production default).",
            )
        )
    if settings.LOG_FILE:
        writable = Path(settings.LOG_FILE).parent.is_dir()
        findings.append(
            Finding(
                "logs:file",
                INFO if writable else WARNING,
                "Logs are also written to a file" if writable else "LOG_FILE's directory is gone",
                f"LOG_FILE={settings.LOG_FILE} (JSON lines, reopened after rotation)"
                + ("" if writable else ": its directory does not exist here")
                + ".",
                "" if writable else "Point LOG_FILE at a directory that exists, or unset it.",
            )
        )
    else:
        findings.append(
            Finding(
                "logs:file",
                INFO,
                "Logs go to standard output only",
                "LOG_FILE is empty: the container runtime collects standard output.",
            )
        )
    return findings


def _metrics_token():
    if settings.METRICS_TOKEN:
        return Finding(
            "metrics:token",
            INFO,
            "Prometheus can scrape /metrics",
            f"METRICS_TOKEN is set ({len(settings.METRICS_TOKEN)} characters): scrapers send it "
            "as a bearer token.",
        )
    return Finding(
        "metrics:token",
        WARNING,
        "No METRICS_TOKEN: Prometheus cannot scrape /metrics",
        "METRICS_TOKEN is empty: /metrics, /stats and /health-detailed answer ops staff "
        "sessions only.",
        "Set METRICS_TOKEN from a secret and give Prometheus the same token.",
    )


def _sentry():
    if settings.SENTRY_DSN:
        return Finding(
            "errors:sentry",
            INFO,
            "Errors are reported to Sentry",
            f"SENTRY_DSN is set (environment {settings.SENTRY_ENVIRONMENT}, release "
            f"{settings.SENTRY_RELEASE or 'unknown'}, traces sampled "
            f"{settings.SENTRY_TRACES_SAMPLE_RATE:g}).",
        )
    return Finding(
        "errors:sentry",
        WARNING,
        "No error tracking",
        "SENTRY_DSN is empty: unhandled exceptions are only logged and grouped in the error "
        "groups table.",
        "Set SENTRY_DSN to report exceptions with their context and release.",
    )


def _rule_count(path):
    # libyaml's parser where PyYAML was built with it: the pure-Python one is many times slower.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(path.read_text(), Loader=loader) or {}  # noqa: S506 - a safe loader
    groups = document.get("groups") or []
    return len(groups), sum(len(group.get("rules") or []) for group in groups)


def _alert_rules():
    path = Path(settings.SCALING_AUDIT_ALERT_RULES)
    if not path.is_file():
        return Finding(
            "alerts:rules",
            WARNING,
            "No alert rules where the audit looks",
            f"SCALING_AUDIT_ALERT_RULES={path}: no such file in this deployment.",
            "Point SCALING_AUDIT_ALERT_RULES at the Prometheus rules Prometheus loads "
            "(deploy/prometheus/rules.yml, mounted from a ConfigMap in Kubernetes).",
        )
    try:
        groups, rules = _rule_count(path)
    except (OSError, yaml.YAMLError, AttributeError, TypeError) as error:
        return Finding(
            "alerts:rules",
            CRITICAL,
            "The alert rules cannot be read",
            f"{path}: {type(error).__name__}: {error}",
            "Fix the file: Prometheus refuses to load it.",
        )
    promtool = shutil.which("promtool")
    counted = f"{path}: {groups} group(s), {rules} rule(s)"
    if promtool is None:
        return Finding(
            "alerts:rules",
            INFO,
            "Alert rules present (promtool not installed to validate them)",
            f"{counted}; parsed as YAML only.",
            "",
            {"groups": groups, "rules": rules, "validated": False},
        )
    completed = subprocess.run(  # noqa: S603 - fixed arguments, the configured file
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        return Finding(
            "alerts:rules",
            CRITICAL,
            "The alert rules are invalid",
            f"{counted}; promtool check rules failed: {' '.join(output[-3:])}",
            "Fix the rules: Prometheus refuses to load an invalid file, so no alert fires.",
            {"groups": groups, "rules": rules, "validated": False},
        )
    return Finding(
        "alerts:rules",
        INFO,
        "Alert rules present and valid",
        f"{counted}; promtool check rules passed.",
        "",
        {"groups": groups, "rules": rules, "validated": True},
    )


def logging_and_monitoring(scope):
    return [*_logs(), _metrics_token(), _sentry(), _alert_rules()]
