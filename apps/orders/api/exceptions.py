"""Exceptions of the orders API beyond the shared ones (apps/api/exceptions.py)."""

from rest_framework import exceptions, status


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"
