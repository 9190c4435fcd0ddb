from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    verbose_name = "Tenants"

    def ready(self):
        from axes.signals import user_locked_out
        from django.db.models.signals import post_delete, post_save

        from apps.tenants import known_keys
        from apps.tenants.brute_force import record_admin_login_lockout
        from apps.tenants.models import Organization, OrganizationAPIKey

        user_locked_out.connect(record_admin_login_lockout, dispatch_uid="orders-admin-lockout")
        for signal in (post_save, post_delete):
            signal.connect(
                known_keys.key_changed, sender=OrganizationAPIKey, dispatch_uid="orders-api-key"
            )
        post_save.connect(
            known_keys.organization_changed, sender=Organization, dispatch_uid="orders-api-org"
        )
