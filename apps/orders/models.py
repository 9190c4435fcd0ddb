from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from apps.orders.querysets import CustomerQuerySet, OrderQuerySet, ProductQuerySet
from apps.tenants.models import Organization

MONEY = {"max_digits": 12, "decimal_places": 2}
# Every table leads its composite indexes with organization_id, which makes a separate index on
# that column alone redundant (hence db_index=False on the organization foreign keys).


class Customer(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # Whatever its case: `?email=` matches regardless of case, and mail is delivered
            # to CUSTOMER1@ and customer1@ alike. Led by the organization, as every index here.
            models.UniqueConstraint(
                "organization",
                Lower("email"),
                name="orders_customer_email_ci_unique_per_org",
                violation_error_message="A customer with this email already exists.",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="orders_cust_org_created"),
            models.Index(fields=["organization", "name"], name="orders_cust_org_name"),
        ]

    def __str__(self):
        return f"{self.name} <{self.email}>"


class Product(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    sku = models.CharField("SKU", max_length=64)
    name = models.CharField(max_length=200)
    price = models.DecimalField(**MONEY, validators=[MinValueValidator(Decimal("0"))])
    stock = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "sku"], name="orders_product_sku_unique_per_org"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_product_price_gte_0"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="orders_product_stock_gte_0"),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="orders_prod_org_created"),
            models.Index(fields=["organization", "is_active", "name"], name="orders_prod_org_act"),
        ]

    def __str__(self):
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"
        SHIPPED = "shipped"
        CANCELLED = "cancelled"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3, default="EUR")
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "number"], name="orders_order_number_unique_per_org"
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="orders_order_total_gte_0"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "paid", "shipped", "cancelled"]),
                name="orders_order_status_valid",
            ),
            # A paid or shipped order records when; a pending one has not been paid.
            models.CheckConstraint(
                condition=~Q(status__in=["paid", "shipped"]) | Q(paid_at__isnull=False),
                name="orders_order_paid_has_paid_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="shipped") | Q(shipped_at__isnull=False),
                name="orders_order_shipped_has_shipped_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False),
                name="orders_order_cancelled_has_cancelled_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "-created_at", "-id"], name="orders_order_org_created"
            ),
            models.Index(
                fields=["organization", "status", "created_at"], name="orders_order_org_status"
            ),
            models.Index(
                fields=["organization", "customer", "created_at"], name="orders_order_org_cust"
            ),
        ]

    def __str__(self):
        return self.number


class OrderLine(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    # No index of its own: the (order, product) unique constraint leads with it and serves every
    # lookup by order; a second index only slowed each line's insert.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="orders_line_price_gte_0"),
            models.CheckConstraint(condition=Q(line_total__gte=0), name="orders_line_total_gte_0"),
            models.UniqueConstraint(
                fields=["order", "product"], name="orders_line_product_once_per_order"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "product"], name="orders_line_org_product"),
        ]

    def __str__(self):
        return f"{self.quantity} x product {self.product_id}"


class OrderNumberSequence(models.Model):
    """The last order number handed out per organization; its row is locked while numbering."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_number = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(last_number__gte=0), name="orders_sequence_last_number_gte_0"
            ),
        ]

    def __str__(self):
        return f"{self.organization_id}: {self.last_number}"


class IdempotencyRecord(models.Model):
    """The first response to an `Idempotency-Key`, replayed to retries with the same body."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, db_index=False)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "key"], name="orders_idempotency_key_unique_per_org"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="orders_idem_org_created"),
        ]

    def __str__(self):
        return self.key
