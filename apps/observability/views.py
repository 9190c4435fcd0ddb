import os
import time

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

PROCESS_STARTED = time.monotonic()


@never_cache
@require_safe
def liveness(request):
    """Liveness: no dependency is checked; answering at all is the signal."""
    return JsonResponse(
        {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_seconds": round(time.monotonic() - PROCESS_STARTED, 1),
        }
    )
