"""The admin app with Mailwarden's own AdminSite as the default site.

`default_site` makes `django.contrib.admin.site` (and so every `@admin.register` and
`admin.site.register` of every app) the MailwardenAdminSite, without touching those calls.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class MailwardenAdminConfig(AdminConfig):
    default_site = "config.admin_site.MailwardenAdminSite"
