from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    verbose_name = "Tenants"

    def ready(self):
        from axes.signals import user_locked_out

        from apps.tenants.brute_force import record_admin_login_lockout

        user_locked_out.connect(record_admin_login_lockout, dispatch_uid="orders-admin-lockout")
