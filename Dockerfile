# syntax=docker/dockerfile:1
#
# Orders service image: a builder stage builds the virtualenv from the pinned requirements, the
# runtime stage carries only that virtualenv, the code and the collected static files, and runs
# as a non-root user.
#
#   docker build --build-arg GIT_SHA="$(git rev-parse --short=12 HEAD)" -t orders-service .
#
# The container never migrates on start (several replicas would race, and a failed migration
# would crash-loop the web tier). Migrate explicitly first:
#   docker compose run --rm migrate           (local, see docker-compose.yml)
#   kubectl apply -f deploy/k8s/migrate-job.yaml   (Kubernetes, see deploy/k8s/README.md)

FROM python:3.12-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- builder: the virtualenv from the pinned production requirements ----------------------------
FROM base AS builder
COPY requirements/prod.txt /tmp/requirements/prod.txt
# The compiled dependencies (psycopg-binary, brotli, rpds-py, ...) ship manylinux wheels: no
# compiler or system package is needed.
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir -r /tmp/requirements/prod.txt

# --- runtime ------------------------------------------------------------------------------------
FROM base AS runtime
# A fixed numeric uid: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Code and static files stay owned by root: the service cannot modify its own code.
COPY . .
ENV DJANGO_ENV=production
# Production settings refuse to load without a secret key and allowed hosts; these throwaway
# values exist only for this RUN line and are not part of the image's environment.
RUN DJANGO_SECRET_KEY=build-time-only-collectstatic-key-not-used-at-runtime-0123456789 \
    DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && python -m compileall -q apps project

# Last, so that a new commit does not invalidate the layers above. settings.py reads GIT_SHA as
# the deployed version (there is no .git in the image).
ARG GIT_SHA=unknown
ENV GIT_SHA=${GIT_SHA}
LABEL org.opencontainers.image.title="orders-service" \
      org.opencontainers.image.revision="${GIT_SHA}"

USER 10001:10001
EXPOSE 8000
# Liveness only (no dependency checks), through urllib: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]
# gunicorn reads gunicorn.conf.py from the working directory (/app); it handles SIGTERM with a
# graceful shutdown of graceful_timeout seconds.
CMD ["gunicorn", "project.wsgi:application"]
