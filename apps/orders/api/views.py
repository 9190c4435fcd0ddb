import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.routers import APIRootView
from rest_framework.views import APIView

from apps.api.errors import error_responses
from apps.api.exceptions import Conflict
from apps.api.filters import DjangoFilterBackend
from apps.api.views import ReleasedOnCloseMixin
from apps.orders import idempotency, reports, services
from apps.orders.api.exceptions import IdempotencyKeyReused
from apps.orders.api.filters import CustomerFilter, OrderFilter, ProductFilter, SafeSearchFilter
from apps.orders.api.pagination import OrderCursorPagination
from apps.orders.api.serializers import (
    CustomerSerializer,
    OrderCreateSerializer,
    OrderListSerializer,
    OrderSerializer,
    ProductSerializer,
)
from apps.orders.models import Customer, Order, Product

ID_PATTERN = "[0-9]{1,18}"


@extend_schema(exclude=True)
class ApiRootView(APIRootView):
    """GET /api/v1/: the URL of every endpoint. Public, like the schema: it holds no data."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []


# Everything an API view shares: the key's organization, and no caching of answers.
class OrganizationAPIMixin(ReleasedOnCloseMixin):
    lookup_value_regex = ID_PATTERN

    @property
    def organization(self):
        return self.request.auth.organization

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # Schema generation: no request key, only the model matters.
            return self.queryset
        return self.get_organization_queryset()

    def get_organization_queryset(self):
        raise NotImplementedError

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request is not None and self.request.auth is not None:
            context["organization"] = self.organization
        return context

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_cache_control(response, no_store=True)
        return response


class OrganizationModelViewSet(OrganizationAPIMixin, viewsets.ModelViewSet):
    filter_backends = [
        DjangoFilterBackend,
        SafeSearchFilter,
        OrderingFilter,
    ]
    ordering = ["id"]

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)

    def _save(self, serializer):
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:
            # A concurrent request took the same unique value between validation and insert.
            raise Conflict("A row with the same unique value was just written.") from None


CRUD_ERRORS = {
    "list": error_responses(),
    "create": error_responses(),
    "retrieve": error_responses(404),
    "update": error_responses(404, 409),
    "partial_update": error_responses(404, 409),
    "destroy": error_responses(404, 409),
}


def crud_schema(serializer, noun):
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {noun}s", responses={200: serializer(many=True), **CRUD_ERRORS["list"]}
        ),
        create=extend_schema(
            summary=f"Create a {noun}", responses={201: serializer, **CRUD_ERRORS["create"]}
        ),
        retrieve=extend_schema(
            summary=f"Get a {noun}", responses={200: serializer, **CRUD_ERRORS["retrieve"]}
        ),
        update=extend_schema(
            summary=f"Replace a {noun}", responses={200: serializer, **CRUD_ERRORS["update"]}
        ),
        partial_update=extend_schema(
            summary=f"Update a {noun}",
            responses={200: serializer, **CRUD_ERRORS["partial_update"]},
        ),
        destroy=extend_schema(
            summary=f"Delete a {noun} (409 while orders refer to it)",
            responses={204: None, **CRUD_ERRORS["destroy"]},
        ),
    )


@crud_schema(CustomerSerializer, "customer")
class CustomerViewSet(OrganizationModelViewSet):
    queryset = Customer.objects.none()  # the model, for the schema; rows come from get_queryset
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["email", "name"]
    ordering_fields = ["id", "email", "name", "created_at"]

    def get_organization_queryset(self):
        return Customer.objects.for_org(self.organization)


@crud_schema(ProductSerializer, "product")
class ProductViewSet(OrganizationModelViewSet):
    queryset = Product.objects.none()
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ["sku", "name"]
    ordering_fields = ["id", "sku", "name", "price", "stock", "created_at"]

    def get_organization_queryset(self):
        return Product.objects.for_org(self.organization)


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
TRANSITIONS = {"pay", "ship", "cancel"}
TRANSITION_ERRORS = error_responses(404, 409)


def _transition_schema(summary):
    return extend_schema(
        request=None, summary=summary, responses={200: OrderSerializer, **TRANSITION_ERRORS}
    )


@extend_schema_view(
    list=extend_schema(
        summary="List orders (newest first, cursor pages)",
        responses={200: OrderListSerializer(many=True), **error_responses()},
    ),
    retrieve=extend_schema(
        summary="Get an order with its lines",
        responses={200: OrderSerializer, **error_responses(404)},
    ),
    create=extend_schema(
        summary="Create an order",
        request=OrderCreateSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_KEY_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    "A retry with the same key and body returns the first answer and creates "
                    "nothing; the same key with another body is a 422. At most 255 characters."
                ),
            )
        ],
        responses={
            201: OrderSerializer,
            **error_responses(409, 422),
        },
    ),
)
class OrderViewSet(
    OrganizationAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    filter_backends = [DjangoFilterBackend]
    queryset = Order.objects.none()
    filterset_class = OrderFilter
    pagination_class = OrderCursorPagination

    def get_organization_queryset(self):
        orders = Order.objects.for_org(self.organization)
        if self.action == "list":
            return orders.with_summary()
        if self.action in TRANSITIONS:
            # The service locks and re-reads the order; its lines are read once, to answer.
            return orders
        return orders.with_lines()

    def get_serializer_class(self):
        if self.action == "list":
            return OrderListSerializer
        if self.action == "create":
            return OrderCreateSerializer
        return OrderSerializer

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
        if key is None:
            status_code, body = self._create_order(serializer.validated_data)
            return Response(body, status=status_code)
        key = key.strip()
        if not key or len(key) > idempotency.MAX_KEY_LENGTH:
            raise serializers.ValidationError(
                {IDEMPOTENCY_KEY_HEADER: ["Give 1 to 255 characters."]}
            )
        try:
            status_code, body, replayed = idempotency.run_once(
                self.organization,
                key,
                request.data,
                lambda: self._create_order(serializer.validated_data),
            )
        except idempotency.KeyReusedWithDifferentRequest:
            raise IdempotencyKeyReused() from None
        response = Response(body, status=status_code)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    def _create_order(self, validated_data):
        try:
            order = services.create_order(
                self.organization, validated_data["customer"], validated_data["lines"]
            )
        except Product.DoesNotExist:
            raise serializers.ValidationError({"lines": ["A product was just deleted."]}) from None
        return status.HTTP_201_CREATED, self._render(order)

    def _render(self, order):
        order = Order.objects.with_lines().get(pk=order.pk)
        return OrderSerializer(order, context=self.get_serializer_context()).data

    def _transition(self, service):
        return Response(self._render(service(self.get_object())))

    @_transition_schema("Pay a pending order")
    @action(detail=True, methods=["post"])
    def pay(self, request, pk=None):
        return self._transition(services.pay)

    @_transition_schema("Ship a paid order")
    @action(detail=True, methods=["post"])
    def ship(self, request, pk=None):
        return self._transition(services.ship)

    @_transition_schema("Cancel a pending or paid order (its units go back to stock)")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition(services.cancel)


class ReportRangeSerializer(serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="First day (default: end minus 29 days)."
    )
    end = serializers.DateField(required=False, help_text="Last day, included (default: today).")

    def validate_start(self, value):
        return self._within_bounds(value)

    def validate_end(self, value):
        return self._within_bounds(value)

    @staticmethod
    def _within_bounds(value):
        if not reports.EARLIEST_DATE <= value <= reports.LATEST_DATE:
            raise serializers.ValidationError(
                f"Give a date from {reports.EARLIEST_DATE} to {reports.LATEST_DATE}."
            )
        return value

    def validate(self, attrs):
        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - dt.timedelta(days=reports.DEFAULT_RANGE_DAYS - 1)
        if start > end:
            raise serializers.ValidationError({"start": ["Must not be after end."]})
        if (end - start).days + 1 > reports.MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"start": [f"The range may cover at most {reports.MAX_RANGE_DAYS} days."]}
            )
        return {**attrs, "start": start, "end": end}


class TopProductsQuerySerializer(ReportRangeSerializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class SalesDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class TopProductSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)


class ReportSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()


class SalesReportSerializer(ReportSerializer):
    results = SalesDaySerializer(many=True, help_text="One row per day of the range.")


class TopProductsReportSerializer(ReportSerializer):
    results = TopProductSerializer(many=True, help_text="Best sellers first.")


# A report over a range of days; the query's other fields are the report's parameters. (A
# comment, not a docstring: drf-spectacular would publish a docstring as the description.)
class ReportView(OrganizationAPIMixin, APIView):
    report_name = None
    query_serializer_class = ReportRangeSerializer

    def get(self, request):
        query = self.query_serializer_class(data=request.query_params)
        query.is_valid(raise_exception=True)
        parameters = dict(query.validated_data)
        start, end = parameters.pop("start"), parameters.pop("end")
        results = reports.run_report(self.report_name, self.organization, start, end, **parameters)
        return Response({"start": start, "end": end, "results": results})


def _report_schema(summary, report_serializer):
    def document(view):
        return extend_schema(
            summary=summary,
            parameters=[view.query_serializer_class],
            responses={200: report_serializer, **error_responses()},
        )(view)

    return document


@_report_schema("Sales per day (paid and shipped orders by day of creation)", SalesReportSerializer)
class SalesReportView(ReportView):
    report_name = "sales"


@_report_schema(
    "Best-selling products by units (paid and shipped orders)", TopProductsReportSerializer
)
class TopProductsReportView(ReportView):
    report_name = "top_products"
    query_serializer_class = TopProductsQuerySerializer
