"""Operations on orders: the API, the admin and the commands all go through these functions.

Locking: create_order locks the products it sells in ascending id order, then the organization's
order number row; cancel locks the order, then its products in ascending id order. Every
transaction takes product locks in the same order, so concurrent orders wait but never deadlock.
Under those locks, the stock of all an order's lines is taken or put back in one UPDATE.
On SQLite, IMMEDIATE transactions (settings) serialise writers and select_for_update is a no-op.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, F, IntegerField, When
from django.utils import timezone

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

    The sequence row stays locked until the surrounding transaction ends, so two concurrent
    orders of one organization never get the same number.
    """
    updated = OrderNumberSequence.objects.filter(organization=organization).update(
        last_number=F("last_number") + 1
    )
    if not updated:
        try:
            with transaction.atomic():
                OrderNumberSequence.objects.create(organization=organization, last_number=1)
        except IntegrityError:
            # Another transaction created the row first; count on from its value.
            OrderNumberSequence.objects.filter(organization=organization).update(
                last_number=F("last_number") + 1
            )
    number = (
        OrderNumberSequence.objects.filter(organization=organization)
        .values_list("last_number", flat=True)
        .get()
    )
    return format_order_number(number)


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
        order = Order.objects.create(
            organization=organization,
            customer=customer,
            number=next_order_number(organization),
            currency=currency,
        )
        order_lines = []
        total = Decimal("0.00")
        for line in sorted(requests, key=lambda line: line.product_id):
            product = products[line.product_id]
            line_total = product.price * line.quantity
            total += line_total
            order_lines.append(
                OrderLine(
                    organization=organization,
                    order=order,
                    product=product,
                    quantity=line.quantity,
                    unit_price=product.price,
                    line_total=line_total,
                )
            )
            product.stock -= line.quantity
        _change_stock({line.product_id: -line.quantity for line in requests})
        OrderLine.objects.bulk_create(order_lines)
        order.total = total
        order.save(update_fields=["total", "updated_at"])
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
