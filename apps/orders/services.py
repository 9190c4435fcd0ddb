"""Operations on orders: the API, the admin and the commands all go through these functions.

Locking: create_order locks the products it sells in ascending id order and, last of all, just
before the order row is inserted, the organization's order number row; cancel locks the order,
then its products in ascending id order. Every transaction takes product locks in the same order,
so concurrent orders wait but never deadlock. Under those locks, the stock of all an order's lines
is taken or put back in one UPDATE.
On SQLite, IMMEDIATE transactions (settings) serialise writers and select_for_update is a no-op.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, When
from django.utils import timezone

from apps.common.bulk_load import reserve_ids
from apps.common.database import upsert_sql
from apps.orders import report_cache
from apps.orders.models import Order, OrderLine, OrderNumberSequence, Product

ORDER_NUMBER_PREFIX = "ORD"


class OrderError(Exception):
    """A domain rule refused the operation; the API answers 409."""

    code = "conflict"


class OutOfStock(OrderError):
    code = "out_of_stock"

    def __init__(self, product, requested):
        self.product = product
        self.requested = requested
        super().__init__(
            f"Not enough stock for product {product.sku} (id {product.pk}): "
            f"{requested} requested, {product.stock} available."
        )


class ProductUnavailable(OrderError):
    code = "product_unavailable"

    def __init__(self, product):
        self.product = product
        super().__init__(f"Product {product.sku} (id {product.pk}) is not for sale.")


class InvalidTransition(OrderError):
    code = "invalid_transition"

    def __init__(self, order, action):
        self.order = order
        self.action = action
        super().__init__(f"Order {order.number} is {order.status} and cannot be {action}.")


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


def _as_line_request(line):
    if isinstance(line, LineRequest):
        return line
    product = line["product"]
    product_id = product.pk if isinstance(product, Product) else int(product)
    return LineRequest(product_id=product_id, quantity=int(line["quantity"]))


def next_order_number(organization):
    """The next human-readable number of the organization, e.g. ORD-000042.

    One statement creates the sequence row or counts it on, and returns the new value. The row
    stays locked until the surrounding transaction ends, so two concurrent orders of one
    organization never get the same number: call it as late in the transaction as possible.
    """
    # Django's ORM has no INSERT ... ON CONFLICT ... RETURNING.
    table = connection.ops.quote_name(OrderNumberSequence._meta.db_table)
    upsert = upsert_sql(
        connection,
        table,
        ["organization_id", "last_number"],
        ["organization_id"],
        [f"last_number = {table}.last_number + 1"],
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{upsert} RETURNING last_number", [organization.pk, 1])
        (number,) = cursor.fetchone()
    return format_order_number(number)


def _reserve_order_id():
    """A fresh id from the order table's sequence on PostgreSQL, None elsewhere (SQLite serialises
    writers, so there the order is inserted first and the lines after it)."""
    if connection.vendor != "postgresql":
        return None
    return reserve_ids(Order)[0]


def format_order_number(number):
    return f"{ORDER_NUMBER_PREFIX}-{number:06d}"


def create_order(organization, customer, lines, currency="EUR"):
    """Create a pending order, pricing lines from the products and taking their stock.

    `lines` is a list of `{"product": Product or id, "quantity": n}` (or LineRequest), each product
    at most once. Raises OutOfStock (nothing is written) when a product has too few units.
    """
    requests = [_as_line_request(line) for line in lines]
    if not requests:
        raise ValueError("An order needs at least one line")
    if len({line.product_id for line in requests}) != len(requests):
        raise ValueError("Each product may appear only once in an order")
    if customer.organization_id != organization.pk:
        raise ValueError("The customer belongs to another organization")
    with transaction.atomic():
        locked = Product.objects.select_for_update().filter(
            organization=organization, pk__in=[line.product_id for line in requests]
        )
        products = {product.pk: product for product in locked.order_by("pk")}
        if len(products) != len(requests):
            raise Product.DoesNotExist("A product does not exist in this organization")
        for line in requests:
            product = products[line.product_id]
            if not product.is_active:
                raise ProductUnavailable(product)
            if product.stock < line.quantity:
                raise OutOfStock(product, line.quantity)
        order = Order(
            organization=organization,
            customer=customer,
            currency=currency,
            total=sum(
                (products[line.product_id].price * line.quantity for line in requests),
                Decimal("0.00"),
            ),
        )
        _change_stock({line.product_id: -line.quantity for line in requests})
        order_lines = [
            OrderLine(
                organization=organization,
                order=order,
                product=products[line.product_id],
                quantity=line.quantity,
                unit_price=products[line.product_id].price,
                line_total=products[line.product_id].price * line.quantity,
            )
            for line in sorted(requests, key=lambda line: line.product_id)
        ]
        for line in requests:
            products[line.product_id].stock -= line.quantity
        # The number row is the one lock every order of the organization queues on: take it
        # last. On PostgreSQL the lines go in first under a reserved order id (foreign keys are
        # checked at commit), so only the order's own INSERT and the commit run under it.
        order.pk = _reserve_order_id()
        lines_first = order.pk is not None
        if lines_first:
            OrderLine.objects.bulk_create(order_lines)
        order.number = next_order_number(organization)
        order.save(force_insert=True)
        if not lines_first:
            OrderLine.objects.bulk_create(order_lines)
        _reports_change_on_commit(organization.pk)
    return order


def _transition(order, allowed, to, action, timestamp_field, before_save=None):
    """Move the order, locked, from one of the `allowed` statuses to `to` and stamp the time in
    `timestamp_field`; from any other status raise InvalidTransition(order, action), writing
    nothing. `before_save(order)` does the transition's own work in the same transaction.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status not in allowed:
            raise InvalidTransition(order, action)
        if before_save is not None:
            before_save(order)
        order.status = to
        setattr(order, timestamp_field, timezone.now())
        order.save(update_fields=["status", timestamp_field, "updated_at"])
        _reports_change_on_commit(order.organization_id)
    return order


def _reports_change_on_commit(organization_id):
    """Once the write commits, the organization's cached reports are stale and its next ones
    read the primary (report_cache)."""
    transaction.on_commit(lambda: report_cache.organization_changed(organization_id))


def pay(order):
    return _transition(order, (Order.Status.PENDING,), Order.Status.PAID, "paid", "paid_at")


def ship(order):
    return _transition(order, (Order.Status.PAID,), Order.Status.SHIPPED, "shipped", "shipped_at")


def cancel(order):
    """Cancel a pending or paid order and put its units back in stock."""
    return _transition(
        order,
        (Order.Status.PENDING, Order.Status.PAID),
        Order.Status.CANCELLED,
        "cancelled",
        "cancelled_at",
        before_save=_restock,
    )


def _restock(order):
    returned = {}
    for product_id, quantity in order.lines.values_list("product_id", "quantity"):
        returned[product_id] = returned.get(product_id, 0) + quantity
    # Lock the products in the same order as create_order does.
    list(
        Product.objects.select_for_update()
        .filter(pk__in=returned)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _change_stock(returned)


def _change_stock(changes):
    """Add `changes` ({product id: units, negative to take}) to the stock of the products, all in
    one UPDATE. The caller holds the products' row locks and has checked that none goes below 0
    (the stock check constraint would refuse it anyway)."""
    if not changes:
        return
    Product.objects.filter(pk__in=changes).update(
        stock=Case(
            *(
                When(pk=product_id, then=F("stock") + units)
                for product_id, units in changes.items()
            ),
            default=F("stock"),
            output_field=IntegerField(),
        )
    )
