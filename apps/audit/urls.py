"""The audit page, mounted at /admin/ops/audit/ by project/urls.py (ops does not import it)."""

from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.report_page, name="report"),
    path("report.md", views.markdown_download, name="markdown"),
]
