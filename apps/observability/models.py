"""The app's models, for Django's discovery: they live with the code that writes them."""

from apps.observability.telemetry.models import (  # noqa: F401
    ErrorGroup,
    RequestMinute,
    RequestQuarterHour,
    SlowRequest,
)
