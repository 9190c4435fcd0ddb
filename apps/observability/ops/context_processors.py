from django.conf import settings


def deployment(request):
    """Which deployment a staff member is looking at, shown in the admin header."""
    return {
        "deployment_environment": settings.DJANGO_ENV,
        "deployment_version": settings.GIT_SHA,
    }
