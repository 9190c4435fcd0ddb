"""The service's URLs plus /drill/error/, which fails as a broken view does: an unhandled
exception, answered 500 by the service's own error handling and counted as one."""

from django.urls import path

from project.urls import handler400, handler500, urlpatterns as service_urlpatterns


class InjectedFault(Exception):
    """Raised on purpose by the error drill."""


def failing_view(request):
    raise InjectedFault("injected by the error drill")


urlpatterns = [path("drill/error/", failing_view, name="drill-error"), *service_urlpatterns]
__all__ = ["handler400", "handler500", "urlpatterns"]
