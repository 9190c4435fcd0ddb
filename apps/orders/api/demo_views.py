"""Development-only endpoints that misbehave on purpose, for `manage.py demo_traffic`.

Included in the URLconf only when DEBUG is on (project/urls.py): in production they do not
exist. Each one makes a panel of the ops pages show something true: a slow request with a slow
query, an N+1 query pattern, an error group (a 500) and throttled requests (429). They use the
API's authentication: an organization API key, and only that organization's rows.
"""

import time

from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.orders.api.views import OrganizationAPIMixin
from apps.orders.models import Order
from apps.tenants.throttling import APIKeyRateThrottle

DEMO_THROTTLE_RATE = "5/minute"


class DemoError(RuntimeError):
    """Raised by /api/dev/error/: the 500 that demo_traffic asks for."""


class SlowQuerySerializer(serializers.Serializer):
    ms = serializers.IntegerField(min_value=1, max_value=10_000, default=1500)


def run_slow_query(milliseconds):
    """One query of the database that takes about `milliseconds`: the slow query the inspector
    and silk record, inside a slow request."""
    seconds = milliseconds / 1000
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        else:
            # SQLite has no sleep: a function of this connection's own, called by the query.
            connection.connection.create_function("demo_sleep", 1, time.sleep)
            cursor.execute("SELECT demo_sleep(%s)", [seconds])


@extend_schema(exclude=True)
class DemoSlowView(OrganizationAPIMixin, APIView):
    """GET /api/dev/slow/?ms=1500: a request made slow by one slow query."""

    def get(self, request):
        query = SlowQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run_slow_query(query.validated_data["ms"])
        return Response({"slept_ms": query.validated_data["ms"]})


@extend_schema(exclude=True)
class DemoNPlusOneView(OrganizationAPIMixin, APIView):
    """GET /api/dev/n-plus-one/: the newest orders with their line counts, one query per order
    (the N+1 that OrderQuerySet.with_line_count avoids)."""

    def get(self, request):
        orders = Order.objects.for_org(self.organization).order_by("-id")[:20]
        return Response(
            [{"number": order.number, "lines": order.lines.count()} for order in orders]
        )


@extend_schema(exclude=True)
class DemoErrorView(OrganizationAPIMixin, APIView):
    """GET /api/dev/error/: an unhandled exception, answered 500 and grouped by the ops side."""

    def get(self, request):
        raise DemoError("Deliberate error from /api/dev/error/ (manage.py demo_traffic)")


class DemoBurstThrottle(APIKeyRateThrottle):
    scope = "demo_burst"

    def get_rate(self):
        return DEMO_THROTTLE_RATE


@extend_schema(exclude=True)
class DemoThrottledView(OrganizationAPIMixin, APIView):
    """GET /api/dev/throttled/: DEMO_THROTTLE_RATE per key, so that a short burst gets 429s."""

    throttle_classes = [DemoBurstThrottle]

    def get(self, request):
        return Response({"throttle_rate": DEMO_THROTTLE_RATE})
