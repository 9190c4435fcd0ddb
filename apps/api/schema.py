from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.tenants.authentication.BearerAPIKeyAuthentication"
    name = "BearerAPIKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An organization API key: `Authorization: Bearer <prefix>.<secret>`.",
        }
