"""Read paths of the domain models; views and the admin build on these."""

from django.db import models
from django.db.models.functions import Coalesce


class OrganizationQuerySet(models.QuerySet):
    def for_org(self, organization):
        return self.filter(organization=organization)


class CustomerQuerySet(OrganizationQuerySet):
    pass


class ProductQuerySet(OrganizationQuerySet):
    def active(self):
        return self.filter(is_active=True)


class OrderQuerySet(OrganizationQuerySet):
    def with_summary(self):
        """Customer and line count in the same query: a list row needs nothing more."""
        return self.select_related("customer").with_line_count()

    def with_line_count(self):
        """`line_count` as a correlated subquery, not a JOIN + GROUP BY: PostgreSQL then reads a
        page from the (organization, -created_at, -id) index and counts lines for those rows
        only, instead of aggregating every order of the organization before the LIMIT."""
        line_count = (
            self._order_lines()
            .filter(order=models.OuterRef("pk"))
            .order_by()
            .values("order")
            .annotate(count=models.Count("*"))
            .values("count")
        )
        return self.annotate(line_count=Coalesce(models.Subquery(line_count), 0))

    def with_lines(self):
        return self.select_related("customer").prefetch_related(
            models.Prefetch(
                "lines",
                queryset=self._order_lines().select_related("product").order_by("id"),
            )
        )

    def _order_lines(self):
        # OrderLine through the relation: models.py imports this module, not the other way round.
        return self.model._meta.get_field("lines").related_model.objects.all()
