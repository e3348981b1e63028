"""OpenAPI description of the bearer-token authentication (drf-spectacular extension).

It stays in crm, not core.api: it describes crm.auth.TokenAuthentication (tokens are crm's
ApiToken, created with crm's create_token command), and core knows nothing of the apps.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "crm.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer mw_...` — create one with "
            "`manage.py create_token USERNAME --scopes crm:read,crm:write`.",
        }
