"""Sales reports: aggregated in the database, read from a replica in rotation when one is
configured, cached briefly per organization, parameters and report version (report_cache)."""

import datetime as dt
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.common.replicas import read_on_replica
from apps.orders.models import Order, OrderLine
from apps.orders.report_cache import report_scope

REPORT_CACHE_SECONDS = 60
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
# Dates far enough from the calendar's ends that a range and its bounds stay computable.
EARLIEST_DATE = dt.date(1970, 1, 1)
LATEST_DATE = dt.date(9000, 12, 31)
# Sales are orders that were paid (shipped ones were paid first), by day of creation.
SOLD_STATUSES = (Order.Status.PAID, Order.Status.SHIPPED)
CENT = Decimal("0.01")


def _money(value):
    # SQLite sums decimals as numbers without scale; answer "20.00", not "20", everywhere.
    return str(Decimal(value).quantize(CENT))


def _bounds(start, end):
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


def _sold_between(start, end, order_prefix=""):
    """Filter arguments selecting the sales of the range; `order_prefix` reaches the order from
    another model ("order__" from a line)."""
    since, until = _bounds(start, end)
    return {
        f"{order_prefix}status__in": SOLD_STATUSES,
        f"{order_prefix}created_at__gte": since,
        f"{order_prefix}created_at__lt": until,
    }


def _sales_by_day(alias, organization, start, end):
    rows = (
        Order.objects.using(alias)
        .filter(organization=organization, **_sold_between(start, end))
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(orders=Count("id"), revenue=Sum("total"))
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    days = []
    day = start
    while day <= end:
        row = by_day.get(day)
        days.append(
            {
                "date": day.isoformat(),
                "orders": row["orders"] if row else 0,
                "revenue": _money(row["revenue"] if row else 0),
            }
        )
        day += dt.timedelta(days=1)
    return days


def _top_products(alias, organization, start, end, limit):
    rows = (
        OrderLine.objects.using(alias)
        .filter(organization=organization, **_sold_between(start, end, "order__"))
        .values("product_id", "product__sku", "product__name")
        .annotate(quantity=Sum("quantity"), revenue=Sum("line_total"), orders=Count("order_id"))
        .order_by("-quantity", "product_id")[:limit]
    )
    return [
        {
            "product": row["product_id"],
            "sku": row["product__sku"],
            "name": row["product__name"],
            "quantity": row["quantity"],
            "orders": row["orders"],
            "revenue": _money(row["revenue"]),
        }
        for row in rows
    ]


REPORTS = {"sales": _sales_by_day, "top_products": _top_products}


def run_report(name, organization, start, end, **params):
    """The one read path of reports: cached, and on a replica in rotation when there is one,
    unless the organization wrote in the last moments (then on the primary)."""
    version, wrote_recently = report_scope(organization.pk)
    key = ":".join(
        ["report", name, str(organization.pk), f"v{version}", start.isoformat(), end.isoformat()]
        + [f"{param}={value}" for param, value in sorted(params.items())]
    )
    result = cache.get(key)
    if result is None:
        result = read_on_replica(
            lambda alias: REPORTS[name](alias, organization, start, end, **params),
            primary=wrote_recently,
        )
        cache.set(key, result, REPORT_CACHE_SECONDS)
    return result
