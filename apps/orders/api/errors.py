"""The orders API's exception handler: the shared error shape plus the domain's conflicts."""

from apps.api import errors
from apps.orders.services import InvalidTransition, OrderError


def exception_handler(exc, context):
    """apps.api.errors.exception_handler, with an OrderError answered as a 409 in the same shape
    (`current_status` added for an invalid transition)."""
    if isinstance(exc, OrderError):
        extra = {"current_status": exc.order.status} if isinstance(exc, InvalidTransition) else {}
        return errors.conflict_response(exc.code, str(exc), **extra)
    return errors.exception_handler(exc, context)
