"""Mailwarden settings: everything comes from the environment (django-environ, optional .env).

Every setting has a safe default for the embedded mode (`make run`: SQLite, tasks in-process)
and is listed with a comment in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(env.str("MAILWARDEN_ENV_FILE", default=str(BASE_DIR / ".env")))

VAR_DIR = Path(env.str("MAILWARDEN_VAR_DIR", default=str(BASE_DIR / "var")))
INSECURE_SECRET = "insecure-development-secret-do-not-use-in-production"  # noqa: S105

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_SECRET)
if not DEBUG and SECRET_KEY == INSECURE_SECRET:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en"
# The portal's languages (docs/admin.md "Languages"): English and the catalogues in locale/.
# A user's profile language (crm.User.language) wins; else the switcher's cookie, else the
# browser's Accept-Language (LocaleMiddleware); else English.
LANGUAGES = [
    ("en", "English"),
    ("nb", "Norsk (bokmål)"),
    ("sv", "Svenska"),
    ("pl", "Polski"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]

INSTALLED_APPS = [
    # The "Mailwarden" AdminSite replaces admin.site (config/apps.py): every existing
    # @admin.register / admin.site.register lands on it.
    "config.apps.MailwardenAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from our own static files
    "django_celery_beat",
    "import_export",
    "anymail",
    "crm",
    "governance",
    "capture",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "simple_history",
    # after the apps it reads: the dashboard summary, policy history and staff 2FA tooling
    "config.portal",
]
# Extra apps for tooling only (bench/ingest.py adds django_mailbox, the peer it is compared with).
INSTALLED_APPS += env.list("MAILWARDEN_EXTRA_APPS", default=[])

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # static files (admin, Swagger UI, Redoc) served by the web process itself: no CDN, no proxy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # the language from the switcher's cookie or the browser (Accept-Language) ...
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # ... unless the signed-in user chose one in their profile (config/i18n.py)
    "config.i18n.ProfileLanguageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes asks: it turns a lockout into the lockout response
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mailwarden.sqlite3'}")
}
# Persistent connections: a Celery task or request reuses its process's connection instead of
# paying a new PostgreSQL backend each time; health checks drop one the server has closed.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default lives under var/ (not in git): create its folder on a fresh clone.
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL + a busy timeout: the SMTP listener, the web server and in-process tasks share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "crm.User"
# django-axes first: it counts failed logins and refuses a locked-out username/address pair.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env.str("MAILWARDEN_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# WhiteNoise also serves straight from the apps' static folders, so a web process started
# without `collectstatic` (the embedded demo, tests) still has the admin, Swagger UI and Redoc.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Celery -------------------------------------------------------------------------------
# Unset broker = embedded mode: tasks run in-process (eager), so `make run` needs no Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "core.api.FilterBackend",
        "core.api.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.DefaultCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.api.AutoSchema",
    "DEFAULT_METADATA_CLASS": "core.api.Metadata",
    "DEFAULT_THROTTLE_CLASSES": ["crm.auth.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env.str("MAILWARDEN_API_RATE", default="6000/minute")},
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mailwarden API",
    "DESCRIPTION": "Capture, link and govern a sales team's email.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name get distinct component names.
    "ENUM_NAME_OVERRIDES": {
        "EmailKindEnum": "capture.models.EmailMessage.Kind",
        "RecordSourceEnum": "crm.models.Organization.Source",
        "MeetingStatusEnum": "capture.models.Meeting.Status",
        "UserAddressKindEnum": "crm.models.UserAddress.Kind",
        "NeverLogRuleKindEnum": "governance.models.NeverLogRule.Kind",
        "WebhookDeliveryStatusEnum": "governance.models.WebhookDelivery.Status",
        # the same three choices as MailboxConnection.Visibility
        "MailVisibilityEnum": "governance.models.SyncedMailVisibility",
        "ReviewKindEnum": "capture.models.ReviewItem.Kind",
        "ItemKindEnum": "crm.models.Item.Kind",
        "LinkSourceEnum": "capture.models.ThreadLink.Source",
        "EmailDirectionEnum": "capture.models.EmailMessage.Direction",
        "LinkRuleDirectionEnum": "capture.models.LinkRule.Direction",
        "DataSubjectRequestKindEnum": "capture.models.DataSubjectRequest.Kind",
        "ChannelEnum": "capture.models.raw.Channel",
        "GatedMailEnum": "governance.models.OrgSettings.GatedMail",
        "EligibilityReasonEnum": "governance.api.compose.REASON_CHOICES",
    },
    # Record ids in paths (core.api.DatabaseIdConverter): digits within bigint.
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files: /api/docs/ renders
    # on a machine without internet, and no page loads anything from another origin.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PATH_CONVERTER_OVERRIDES": {
        "dbid": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
    },
}
CACHES = {"default": env.cache("MAILWARDEN_CACHE_URL", default="locmemcache://")}

# --- Capture ------------------------------------------------------------------------------
MAILWARDEN_CAPTURE_DOMAIN = env.str("MAILWARDEN_CAPTURE_DOMAIN", default="capture.localhost")
MAILWARDEN_MAX_MESSAGE_BYTES = env.int("MAILWARDEN_MAX_MESSAGE_BYTES", default=60 * 1024 * 1024)
MAILWARDEN_MAX_MIME_DEPTH = env.int("MAILWARDEN_MAX_MIME_DEPTH", default=20)
MAILWARDEN_MAX_MIME_PARTS = env.int("MAILWARDEN_MAX_MIME_PARTS", default=500)
MAILWARDEN_MAX_HEADERS = env.int("MAILWARDEN_MAX_HEADERS", default=1000)
MAILWARDEN_MAX_BODY_CHARS = env.int("MAILWARDEN_MAX_BODY_CHARS", default=1_000_000)
MAILWARDEN_MAX_ATTACHMENT_BYTES = env.int(
    "MAILWARDEN_MAX_ATTACHMENT_BYTES", default=50 * 1024 * 1024
)
MAILWARDEN_BLOCKED_ATTACHMENT_TYPES = env.list(
    "MAILWARDEN_BLOCKED_ATTACHMENT_TYPES",
    default=[".exe", ".bat", ".cmd", ".com", ".js", ".vbs", ".scr", ".msi", ".ps1", ".jar"],
)
MAILWARDEN_KEEP_INLINE_PARTS = env.bool("MAILWARDEN_KEEP_INLINE_PARTS", default=False)
MAILWARDEN_SWEEP_PENDING_AFTER_SECONDS = env.int(
    "MAILWARDEN_SWEEP_PENDING_AFTER_SECONDS", default=300
)
MAILWARDEN_MAX_PROCESS_ATTEMPTS = env.int("MAILWARDEN_MAX_PROCESS_ATTEMPTS", default=5)
# Retention (docs/retention.md): days a deleted message stays restorable (0 = gone at once),
# the purge's batch size, and the key of anonymisation's pseudonyms (default: from SECRET_KEY).
MAILWARDEN_RETENTION_BIN_DAYS = env.int("MAILWARDEN_RETENTION_BIN_DAYS", default=14)
MAILWARDEN_RETENTION_BATCH = env.int("MAILWARDEN_RETENTION_BATCH", default=500)
# Pause between purge batches, so a long purge leaves the database to capture.
MAILWARDEN_RETENTION_PAUSE_MS = env.int("MAILWARDEN_RETENTION_PAUSE_MS", default=0)
# The purge yields to capture (docs/retention.md "A purge that never slows capture"): its
# thread runs this much nicer (Linux: per thread; 0 = off), and while mail is arriving its
# files are removed at most this many a second (0 = no limit) and after a batch during which
# mail arrived it rests this share of the batch's time (0 = never).
MAILWARDEN_PURGE_NICE = env.int("MAILWARDEN_PURGE_NICE", default=10)
MAILWARDEN_PURGE_BUSY_YIELD = env.float("MAILWARDEN_PURGE_BUSY_YIELD", default=1.0)
MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND = env.int(
    "MAILWARDEN_PURGE_BUSY_FILES_PER_SECOND", default=200
)
MAILWARDEN_PSEUDONYM_KEY = env.str("MAILWARDEN_PSEUDONYM_KEY", default="")
MAILWARDEN_AUDIT_RETENTION_DAYS = env.int("MAILWARDEN_AUDIT_RETENTION_DAYS", default=0)
MAILWARDEN_THREAD_WINDOW_DAYS = env.int("MAILWARDEN_THREAD_WINDOW_DAYS", default=30)
MAILWARDEN_RAW_STORAGE_DIR = Path(
    env.str("MAILWARDEN_RAW_STORAGE_DIR", default=str(MEDIA_ROOT / "raw"))
)
# Threads writing a batch's files at once (file creation mostly waits on the kernel).
MAILWARDEN_STORE_WRITE_THREADS = env.int("MAILWARDEN_STORE_WRITE_THREADS", default=4)
MAILWARDEN_BLOB_STORAGE_DIR = Path(
    env.str("MAILWARDEN_BLOB_STORAGE_DIR", default=str(MEDIA_ROOT / "blobs"))
)
# Where raw mail and attachment files live: "local" (the two directories above) or "s3"
# (an S3-compatible bucket through django-storages; docs/operations.md).
MAILWARDEN_FILE_STORE = env.str("MAILWARDEN_FILE_STORE", default="local")
if MAILWARDEN_FILE_STORE not in ("local", "s3"):
    raise ImproperlyConfigured('MAILWARDEN_FILE_STORE must be "local" or "s3".')
MAILWARDEN_S3_BUCKET = env.str("MAILWARDEN_S3_BUCKET", default="")
MAILWARDEN_S3_PREFIX = env.str("MAILWARDEN_S3_PREFIX", default="mailwarden")
MAILWARDEN_S3_ENDPOINT_URL = env.str("MAILWARDEN_S3_ENDPOINT_URL", default="")
MAILWARDEN_S3_REGION = env.str("MAILWARDEN_S3_REGION", default="")
# Empty: boto3's own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, instance role, ...).
MAILWARDEN_S3_ACCESS_KEY = env.str("MAILWARDEN_S3_ACCESS_KEY", default="")
MAILWARDEN_S3_SECRET_KEY = env.str("MAILWARDEN_S3_SECRET_KEY", default="")
if MAILWARDEN_FILE_STORE == "s3" and not MAILWARDEN_S3_BUCKET:
    raise ImproperlyConfigured("MAILWARDEN_FILE_STORE=s3 needs MAILWARDEN_S3_BUCKET.")
# Envelope encryption of raw mail and attachment files, and the key of mailbox secrets:
# comma-separated master keys, newest first (`manage.py rotate_keys` re-wraps everything
# under the first). Empty: files are stored in clear. docs/operations.md.
MAILWARDEN_MASTER_KEYS = env.list("MAILWARDEN_MASTER_KEYS", default=[])
# Older key setting of mailbox secrets (a Fernet key or any passphrase); still read, and used
# for new secrets only while MAILWARDEN_MASTER_KEYS is empty.
MAILWARDEN_ENCRYPTION_KEY = env.str("MAILWARDEN_ENCRYPTION_KEY", default=SECRET_KEY)
# Message bodies and headers encrypted in the database too (capture/bodycrypt.py); needs
# MAILWARDEN_MASTER_KEYS. Nothing can search bodies then. docs/operations.md.
MAILWARDEN_ENCRYPT_BODIES = env.bool("MAILWARDEN_ENCRYPT_BODIES", default=False)
if MAILWARDEN_ENCRYPT_BODIES and not MAILWARDEN_MASTER_KEYS:
    raise ImproperlyConfigured("MAILWARDEN_ENCRYPT_BODIES needs MAILWARDEN_MASTER_KEYS.")

# Open and click tracking (capture/tracking/, docs/governance.md "Tracking")
# Public base URL of the /t/ links (e.g. https://track.example.com); empty = the API's host.
MAILWARDEN_TRACKING_BASE_URL = env.str("MAILWARDEN_TRACKING_BASE_URL", default="")
MAILWARDEN_TRACKING_TOKEN_DAYS = env.int("MAILWARDEN_TRACKING_TOKEN_DAYS", default=180)
# Opens and clicks sooner than this after issuance are flagged as likely machine ones.
MAILWARDEN_TRACKING_MACHINE_SECONDS = env.int("MAILWARDEN_TRACKING_MACHINE_SECONDS", default=10)
# Client networks flagged as machine (Apple MPP's 17.0.0.0/8, Exchange Online Protection).
MAILWARDEN_TRACKING_MACHINE_NETWORKS = env.list(
    "MAILWARDEN_TRACKING_MACHINE_NETWORKS",
    default=["17.0.0.0/8", "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17"],
)
# Reverse proxies whose X-Forwarded-For names the client (CIDRs; empty = REMOTE_ADDR only).
MAILWARDEN_TRACKING_TRUSTED_PROXIES = env.list("MAILWARDEN_TRACKING_TRUSTED_PROXIES", default=[])
# The pixel's INSERT as a prepared statement (off behind pgbouncer's transaction pooling < 1.21).
MAILWARDEN_TRACKING_PREPARED_STATEMENTS = env.bool(
    "MAILWARDEN_TRACKING_PREPARED_STATEMENTS", default=True
)
# Opens and clicks are buffered per web worker and written by a background thread every this
# many seconds (0 = each in its own request); at most this many wait (capture/tracking/buffer.py).
MAILWARDEN_TRACKING_FLUSH_SECONDS = env.float("MAILWARDEN_TRACKING_FLUSH_SECONDS", default=0.2)
MAILWARDEN_TRACKING_BUFFER_EVENTS = env.int("MAILWARDEN_TRACKING_BUFFER_EVENTS", default=10_000)

# SMTP listener
MAILWARDEN_SMTP_HOST = env.str("MAILWARDEN_SMTP_HOST", default="127.0.0.1")
MAILWARDEN_SMTP_PORT = env.int("MAILWARDEN_SMTP_PORT", default=2525)
MAILWARDEN_SMTP_TLS_CERT = env.str("MAILWARDEN_SMTP_TLS_CERT", default="")
MAILWARDEN_SMTP_TLS_KEY = env.str("MAILWARDEN_SMTP_TLS_KEY", default="")
MAILWARDEN_SMTP_TRUST_AUTH_RESULTS = env.str("MAILWARDEN_SMTP_TRUST_AUTH_RESULTS", default="")
MAILWARDEN_SMTP_RATE_LIMIT = env.int("MAILWARDEN_SMTP_RATE_LIMIT", default=200)
MAILWARDEN_SMTP_RATE_WINDOW_SECONDS = env.int("MAILWARDEN_SMTP_RATE_WINDOW_SECONDS", default=3600)
MAILWARDEN_SMTP_AUTH_FAIL_ACTION = env.str("MAILWARDEN_SMTP_AUTH_FAIL_ACTION", default="quarantine")
MAILWARDEN_SMTP_LOOP_LIMIT = env.int("MAILWARDEN_SMTP_LOOP_LIMIT", default=5)
MAILWARDEN_SMTP_SHUTDOWN_GRACE_SECONDS = env.float(
    "MAILWARDEN_SMTP_SHUTDOWN_GRACE_SECONDS", default=30.0
)
MAILWARDEN_SMTP_COMMIT_WINDOW_MS = env.float("MAILWARDEN_SMTP_COMMIT_WINDOW_MS", default=2.0)
MAILWARDEN_SMTP_SYNC = env.str("MAILWARDEN_SMTP_SYNC", default="syncfs")

# IMAP sync
MAILWARDEN_IMAP_TIMEOUT_SECONDS = env.int("MAILWARDEN_IMAP_TIMEOUT_SECONDS", default=30)
MAILWARDEN_IMAP_BATCH_SIZE = env.int("MAILWARDEN_IMAP_BATCH_SIZE", default=200)
MAILWARDEN_IMAP_MAX_AUTH_FAILURES = env.int("MAILWARDEN_IMAP_MAX_AUTH_FAILURES", default=3)
MAILWARDEN_IMAP_EXCLUDED_FOLDERS = env.list(
    "MAILWARDEN_IMAP_EXCLUDED_FOLDERS", default=["Drafts", "Junk", "Spam", "Trash"]
)
MAILWARDEN_IMAP_LEASE_SECONDS = env.int("MAILWARDEN_IMAP_LEASE_SECONDS", default=600)
MAILWARDEN_IMAP_RETRY_MAX_SECONDS = env.int("MAILWARDEN_IMAP_RETRY_MAX_SECONDS", default=3600)
MAILWARDEN_IMAP_CA_FILE = env.str("MAILWARDEN_IMAP_CA_FILE", default="")

# Outbound webhooks (governance/outbound/, docs/webhooks.md "Outbound webhooks").
# Receivers on loopback, private, link-local or otherwise non-public addresses are refused
# (SSRF guard) unless this is on: an operator's decision, not a web admin's.
MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE = env.bool("MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE", default=False)
MAILWARDEN_WEBHOOKS_TIMEOUT_SECONDS = env.float("MAILWARDEN_WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
MAILWARDEN_WEBHOOKS_MAX_ATTEMPTS = env.int("MAILWARDEN_WEBHOOKS_MAX_ATTEMPTS", default=12)
MAILWARDEN_WEBHOOKS_RETRY_BASE_SECONDS = env.float(
    "MAILWARDEN_WEBHOOKS_RETRY_BASE_SECONDS", default=10.0
)
MAILWARDEN_WEBHOOKS_RETRY_MAX_SECONDS = env.float(
    "MAILWARDEN_WEBHOOKS_RETRY_MAX_SECONDS", default=3600.0
)
MAILWARDEN_WEBHOOKS_DISABLE_AFTER = env.int("MAILWARDEN_WEBHOOKS_DISABLE_AFTER", default=30)
MAILWARDEN_WEBHOOKS_KEEP_DAYS = env.int("MAILWARDEN_WEBHOOKS_KEEP_DAYS", default=30)
# CA bundle for https receivers with a private CA (empty: the public CAs of certifi).
MAILWARDEN_WEBHOOKS_CA_FILE = env.str("MAILWARDEN_WEBHOOKS_CA_FILE", default="")
# A queue of their own for deliveries (run a worker with `-Q <name>`): a slow receiver then
# never holds a worker slot capture needs. Empty: the default queue, which every worker reads.
MAILWARDEN_WEBHOOKS_QUEUE = env.str("MAILWARDEN_WEBHOOKS_QUEUE", default="")
if MAILWARDEN_WEBHOOKS_QUEUE:
    CELERY_TASK_ROUTES = {"governance.deliver_webhooks": {"queue": MAILWARDEN_WEBHOOKS_QUEUE}}

# ESP inbound webhooks (django-anymail): each provider's secret, see .env.example and
# docs/webhooks.md. Only keys that are set go in: anymail treats "" as a (weak) key, and an
# endpoint whose verification secret is unset refuses every post (capture/webhooks/views.py).
_ANYMAIL_FROM_ENV = {
    "WEBHOOK_SECRET": "ANYMAIL_WEBHOOK_SECRET",
    "MAILGUN_WEBHOOK_SIGNING_KEY": "MAILGUN_WEBHOOK_SIGNING_KEY",
    "MAILERSEND_INBOUND_SECRET": "MAILERSEND_INBOUND_SECRET",
    "MAILTRAP_INBOUND_SECRET": "MAILTRAP_INBOUND_SECRET",
    "MAILTRAP_API_TOKEN": "MAILTRAP_API_TOKEN",
    "POSTAL_WEBHOOK_KEY": "POSTAL_WEBHOOK_KEY",
    "MANDRILL_WEBHOOK_KEY": "MANDRILL_WEBHOOK_KEY",
    "MANDRILL_WEBHOOK_URL": "MANDRILL_WEBHOOK_URL",
    "BREVO_API_KEY": "BREVO_API_KEY",
    "RESEND_API_KEY": "RESEND_API_KEY",
}
ANYMAIL = {
    key: value for key, name in _ANYMAIL_FROM_ENV.items() if (value := env.str(name, default=""))
}
ANYMAIL["AMAZON_SES_CLIENT_PARAMS"] = {}
# Webhook and form bodies carry whole messages (base64 grows them by 4/3).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int(
    "DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE",
    default=MAILWARDEN_MAX_MESSAGE_BYTES * 4 // 3 + 1024 * 1024,
)
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="mailwarden@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("MAILWARDEN_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Staff accounts (docs/admin.md "Staff accounts") ---------------------------------------
# Two-factor login (django-otp, TOTP) for the admin: on by default in production (DEBUG off),
# off in the embedded demo unless set. `manage.py admin_totp <username>` creates a device.
MAILWARDEN_ADMIN_2FA = env.bool("MAILWARDEN_ADMIN_2FA", default=not DEBUG)
OTP_TOTP_ISSUER = "Mailwarden"
# Lockout after repeated failed logins (django-axes): per username and client address.
AXES_ENABLED = env.bool("MAILWARDEN_LOGIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env.int("MAILWARDEN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("MAILWARDEN_LOGIN_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
# Sessions end after MAILWARDEN_SESSION_HOURS of inactivity or when the browser closes.
SESSION_COOKIE_AGE = int(env.float("MAILWARDEN_SESSION_HOURS", default=8) * 3600)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("MAILWARDEN_SESSION_BROWSER_CLOSE", default=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Admin dashboard: figures come from a summary the beat task refreshes (config/portal).
MAILWARDEN_DASHBOARD_REFRESH_SECONDS = env.int("MAILWARDEN_DASHBOARD_REFRESH_SECONDS", default=300)
MAILWARDEN_DASHBOARD_DAYS = env.int("MAILWARDEN_DASHBOARD_DAYS", default=30)
SIMPLE_HISTORY_REVERT_DISABLED = True  # history is shown, never replayed over audited changes

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
