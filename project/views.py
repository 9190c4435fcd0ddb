"""The landing page at /: what this service is and where everything is."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render


def home(request):
    """Links to the API, its documentation, the admin, the ops pages and the probes, with the
    version; public (the pages it links to check their own permissions)."""
    context = {
        **admin.site.each_context(request),
        "title": "Orders service",
        # The admin's app sidebar belongs to the admin pages, not to this one.
        "is_nav_sidebar_enabled": False,
        "api_version": settings.SPECTACULAR_SETTINGS["VERSION"],
        "silk_enabled": settings.SILK_ENABLED,
    }
    return render(request, "home.html", context)
