import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from apps.orders.models import MONEY, Customer, Order, OrderLine, Product

MAX_ID = 2**63 - 1
MAX_QUANTITY = 1_000_000
MAX_STOCK = 2_147_483_647
MAX_LINES = 100


class MoneyField(serializers.DecimalField):
    """DRF's DecimalField, not quantizing again an amount that has the field's decimal places
    already, as every amount read from the database has (its column's scale)."""

    def to_representation(self, value):
        places = self.decimal_places
        if (
            isinstance(value, Decimal)
            and places
            and getattr(self, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
            and not self.localize
        ):
            text = str(value)
            if text[-places - 1 : -places] == "." and "E" not in text:
                return text
        return super().to_representation(value)


MONEY_FORMAT = MoneyField(**MONEY)


class OrganizationScopedSerializer(serializers.ModelSerializer):
    """Writes set the organization of the API key; uniqueness per organization is checked here
    (the database constraint stays the last word)."""

    unique_per_organization = ()
    # Of those, the ones unique whatever their case (compared lower-cased by the database, as
    # its constraint does).
    unique_whatever_the_case = ()

    @property
    def organization(self):
        return self.context["organization"]

    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        for field in self.unique_per_organization:
            if field not in attrs:
                continue
            clash = model.objects.for_org(self.organization)
            if field in self.unique_whatever_the_case:
                clash = clash.alias(folded=Lower(field)).filter(folded=Lower(Value(attrs[field])))
            else:
                clash = clash.filter(**{field: attrs[field]})
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError(
                    {field: [f"A {model._meta.verbose_name} with this {field} already exists."]}
                )
        return attrs

    def create(self, validated_data):
        return super().create({**validated_data, "organization": self.organization})


class CustomerSerializer(OrganizationScopedSerializer):
    unique_per_organization = ("email",)
    unique_whatever_the_case = ("email",)

    class Meta:
        model = Customer
        fields = ["id", "email", "name"]


class ProductSerializer(OrganizationScopedSerializer):
    unique_per_organization = ("sku",)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK, required=False)

    class Meta:
        model = Product
        fields = ["id", "sku", "name", "price", "stock", "is_active"]


class CustomerSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "email", "name"]


class ProductSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name"]


class OrderLineSerializer(serializers.ModelSerializer):
    product = ProductSummarySerializer(read_only=True)

    class Meta:
        model = OrderLine
        fields = ["product", "quantity", "unit_price", "line_total"]


class OrderSerializer(serializers.ModelSerializer):
    customer = CustomerSummarySerializer(read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "number", "status", "customer", "currency", "total", "lines", "created_at"]
        read_only_fields = fields


class UTCDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField in ISO 8601; when it renders in UTC, a time already in UTC (every time
    read from the database) is written without converting it to the same zone again."""

    def to_representation(self, value):
        if (
            isinstance(value, dt.datetime)
            and value.tzinfo is dt.UTC
            and self._renders_utc
            and getattr(self, "format", api_settings.DATETIME_FORMAT) == ISO_8601
        ):
            return value.isoformat()[:-6] + "Z"
        return super().to_representation(value)

    @cached_property
    def _renders_utc(self):
        zone = getattr(self, "timezone", None) or self.default_timezone()
        return zone is dt.UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


class OrderListSerializer(serializers.ModelSerializer):
    """A list row: the order with its customer summary and line count, without the lines."""

    customer = CustomerSummarySerializer(read_only=True)
    line_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "customer",
            "currency",
            "total",
            "line_count",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, order):
        # What ModelSerializer renders, without building its fields for every request and looking
        # each one up per row: most of a list page's serialisation time. Money and times keep
        # DRF's formatting (the fields below only format; they are bound to nothing).
        customer = order.customer
        return {
            "id": order.pk,
            "number": order.number,
            "status": order.status,
            "customer": {"id": customer.pk, "email": customer.email, "name": customer.name},
            "currency": order.currency,
            "total": MONEY_FORMAT.to_representation(order.total),
            "line_count": order.line_count,
            "created_at": self._time_format.to_representation(order.created_at),
        }

    @cached_property
    def _time_format(self):
        # DRF's field looks the current time zone up for every value; it cannot change while one
        # page renders, so it is looked up once per page (a serializer serves one request).
        return UTCDateTimeField(
            default_timezone=timezone.get_current_timezone() if settings.USE_TZ else None
        )


class OrderLineInputSerializer(serializers.Serializer):
    product = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)


class OrderCreateSerializer(serializers.Serializer):
    """`{"customer": id, "lines": [{"product": id, "quantity": n}]}`; ids of the key's org only."""

    customer = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    lines = OrderLineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)

    def validate_customer(self, value):
        customer = Customer.objects.for_org(self.context["organization"]).filter(pk=value).first()
        if customer is None:
            raise serializers.ValidationError(f"No customer with id {value}.")
        return customer

    def validate_lines(self, lines):
        # Every error of `lines` is keyed by line index, like DRF's own errors for list items
        # (and `non_field_errors` for the list as a whole): one shape for a client to read.
        first_line_of = {}
        errors = {}
        for index, line in enumerate(lines):
            first = first_line_of.setdefault(line["product"], index)
            if first != index:
                errors[index] = {
                    "product": [
                        f"Product {line['product']} is on line {first} already; "
                        "each product may appear only once."
                    ]
                }
        known = set(
            Product.objects.for_org(self.context["organization"])
            .filter(pk__in=list(first_line_of))
            .values_list("pk", flat=True)
        )
        for index, line in enumerate(lines):
            if line["product"] not in known:
                errors.setdefault(index, {"product": [f"No product with id {line['product']}."]})
        if errors:
            raise serializers.ValidationError(dict(sorted(errors.items())))
        return lines
