from django.contrib import admin
from django.urls import path

admin.site.site_header = "Orders service"
admin.site.site_title = "Orders service admin"
admin.site.index_title = "Operations"

urlpatterns = [
    path("admin/", admin.site.urls),
]
