"""Settings, read from environment variables only (12-factor). Every variable is listed in the
README. With none set, the platform runs on a SQLite file and an embedded Celery broker, so a
first try needs nothing installed but Python."""

from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("AIDWALLET_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]"]),
)

# Django's prefix for a key that must not reach production: `check --deploy` reports it (W009).
SECRET_KEY = env.str(
    "SECRET_KEY", default="django-insecure-dev-only-key-set-SECRET_KEY-in-production"
)
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS only, outside DEBUG: plain http is redirected, browsers are told to use nothing else for
# a year (HSTS, which they only accept over https), and the session and CSRF cookies never travel
# in clear. Behind a proxy that terminates TLS, SECURE_PROXY_SSL_HEADER names the header by which
# it says the client's request was https ("HTTP_X_FORWARDED_PROTO,https"): without it every
# request would look like http and be redirected forever. The demo serves plain http on
# 127.0.0.1 with DEBUG on; a server that must answer plain http without it sets
# SECURE_SSL_REDIRECT=false.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = env.tuple("SECURE_PROXY_SSL_HEADER", default=None)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# "preload" only consents to browsers building HSTS in for the domain; that happens when the
# owner of the registrable domain, sending the header there itself, asks for it.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Staff sessions (the admin; the app signs in with its own tokens) end after this many seconds
# without a request: every request pushes the end back, so working staff are never signed out.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=3600)
SESSION_SAVE_EVERY_REQUEST = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "import_export",
    "phonenumber_field",
    "django_celery_beat",
    "csp",
    # The staff's second factor (backoffice/second_factor.py): authenticator apps (TOTP),
    # recovery codes (static tokens) and passkeys (backoffice.models.Passkey).
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Failed sign-ins to the admin, counted by account and by address.
    "axes",
    "anymail",
    # The request id (core/request_id.py): taken from X-Request-ID or drawn, kept for the logs.
    "django_guid",
    # floor 1: the API docs page's template and script (core/templates, core/static)
    "core",
    # floor 2: the ledger; floor 4: the domains; floor 5: the channels and faces
    "ledger",
    "wallet",
    "funders",
    "merchants",
    "notifications",
    "stripe_issuing",
    "beneficiary_app",
    "backoffice",
    "reconciliation",
    "gdpr",
    "operations",
    "landing",
    "demo",
    # --- the shop's till (shop/); its owners' second factor is django-otp's, above ---
    "shop",
]

MIDDLEWARE = [
    # First: every log line of the request, the others' included, carries its id, and the
    # time measured covers every middleware below.
    "core.request_id.RequestIdMiddleware",
    "operations.metrics.RequestMetrics",
    "django.middleware.security.SecurityMiddleware",
    # Near the top: the 503 it answers for a view that could not reach the database passes
    # through every middleware below on its way out (CSP, locale, no-index headers).
    "core.middleware.DatabaseUnavailable",
    # django-csp's, with its usual header built once (core.middleware.ContentSecurityPolicy).
    "core.middleware.ContentSecurityPolicy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Above the site's middleware (they read neither the session nor the user): the APIs'
    # answers carry their language and frame headers too.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: SITE_MIDDLEWARE, for every path but SITE_MIDDLEWARE_SKIPPED_PATHS.
    "core.middleware.SiteMiddleware",
]
# The site's pages' middleware, in their order (core.middleware.SiteMiddleware runs them).
SITE_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "backoffice.middleware.SecondFactorRequired",
    "django.contrib.messages.middleware.MessageMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "backoffice.middleware.AdminNotIndexed",
    # Last, as django-axes asks: it answers a locked-out sign-in with its own page.
    "axes.middleware.AxesMiddleware",
]
# The merchant API: every request carries its API key, none a session, a CSRF cookie or a
# signed-in user, and no admin page lives there. The providers' webhooks (/hooks/: Stripe's
# real-time authorizations, SMS and email reports) are signed by their sender, the same.
SITE_MIDDLEWARE_SKIPPED_PATHS = ["/api/merchant/", "/hooks/"]
# The admin's, django-axes' and the CSRF checks look for their middleware in MIDDLEWARE only:
# all are in SITE_MIDDLEWARE, which runs them on every page but the merchant API's (a test
# checks it).
SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "axes.W002", "security.W003"]

# Sign-in to the admin: a password, then a second factor (backoffice.middleware). After
# AXES_FAILURE_LIMIT wrong passwords for one account, or from one address, that account or
# address is refused for AXES_COOLOFF_TIME hours, whatever the password; every failure is kept
# (AccessFailureLog, in the admin for operators) and a lockout is logged. A right password
# clears the account's count. Behind reverse proxies, the address is the client's as the
# NUM_PROXIES nearest proxies report it (X-Forwarded-For), as for the API's throttles.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Lockouts and failures are still logged (warnings); not every start-up.
AXES_VERBOSE = False
_NUM_PROXIES = env.int("NUM_PROXIES", default=0)
AXES_IPWARE_PROXY_COUNT = _NUM_PROXIES or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if _NUM_PROXIES else ["REMOTE_ADDR"]
)
# The name an authenticator app shows beside the platform's codes.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Aid wallet")
# Passkeys (WebAuthn) are bound to this domain, the admin's host name, and accepted from pages of
# these origins. By default: the first ALLOWED_HOSTS name, over https (http for localhost).
WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default="")
WEBAUTHN_ORIGINS = env.list("WEBAUTHN_ORIGINS", default=[])

# Content-Security-Policy on every page: everything from our own origin only, no third party;
# a script or a style sheet written in a page runs only with the nonce drawn for that response
# (`nonce="{{ request.csp_nonce }}"`). Images may also be data: URLs: the app draws the payment
# code's QR code as one, and data: images run nothing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Messages stay on the server, in the session: the admin shows a webhook endpoint's signing
# secret once in a message, and the default storage would carry it in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The back office's templates first: its admin/base_site.html puts its style sheet on
        # every admin page (django.contrib.admin, listed before it, would win otherwise).
        "DIRS": [BASE_DIR / "backoffice" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database. SQLite by default; PostgreSQL in production and CI (DATABASE_URL=postgres://...).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'aidwallet.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes the write lock at the start of every transaction, so concurrent
    # writers queue on the busy timeout instead of failing with "database is locked" when a
    # read lock would have to be upgraded. WAL lets readers run beside the writer.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # A `SELECT 1` before the first query of each request (measured: 27 µs of the worker's
    # processor, 17 µs of PostgreSQL's, one round trip; BENCHMARKS.md, "the server"). Without
    # it, a connection the server dropped (a restart, a failover, an idle timeout) is found
    # broken by the request's first real query, which fails (a 500); Django closes it only at
    # the end of that request. Kept: a round trip per request against a failed payment per
    # worker at every restart. A merchant-API POST skips it: its first statement, the stored
    # answer's lookup, is its check, run again on a new connection if the server dropped the
    # old one (merchant_api.idempotency.replay).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A server that does not answer is given up after this many seconds instead of the
    # system's TCP timeout (minutes): /readyz must answer fast, and a request too.
    # `?connect_timeout=N` in DATABASE_URL sets another.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # Django 5.2's connection pool (psycopg_pool), for servers whose threads share a process'
    # connections (gthread, ASGI); a sync worker keeps its one connection (CONN_MAX_AGE)
    # without it. Django refuses a pool beside persistent connections.
    if env.int("DB_POOL_MAX_SIZE", default=0):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
            "max_size": env.int("DB_POOL_MAX_SIZE"),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The hot path's few statements (core/prepared.py) are prepared on their connection, by
    # name (SQL's PREPARE), the first time they run; psycopg's prepare_threshold is only the
    # switch core/prepared.py reads (Django's own cursors bind on the client and never
    # prepare). A pooler in transaction mode (PgBouncer, whatever its version: it carries the
    # protocol's prepared statements, not SQL's PREPARE) needs PREPARED_STATEMENTS=false.
    if env.bool("PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0
        # Their generic plan from the first run: PostgreSQL plans a statement's first five runs
        # for their values before it compares and keeps the generic plan, which it does for
        # these; each of those runs planned the read again (1-3 ms of its processor) and made
        # the slowest payments of every connection (CONN_MAX_AGE: each minute). Only
        # statements prepared with parameters are concerned, these alone on this connection.
        options = DATABASES["default"]["OPTIONS"].get("options", "")
        DATABASES["default"]["OPTIONS"]["options"] = (
            f"{options} -c plan_cache_mode=force_generic_plan".strip()
        )
    # No server-side binding for the ORM (psycopg's prepared statements): tried on the authorization
    # benchmark, it left three program floats' running balances off their entries by 23 x 2**32
    # cents (BENCHMARKS.md, "The same path on a quiet machine"); not offered until that is
    # understood and tested.
# A PostgreSQL read replica of DATABASE_URL (streaming replication), for the reads that may be a
# moment old: reports, dashboards, exports, an import's check, the reconciliation. Only what
# core/replica.py's router sends there reads it; never the payment path, never a read that must
# see the latest write. In the tests it is the default database itself.
if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db_url("DATABASE_REPLICA_URL") | {
        "CONN_MAX_AGE": DATABASES["default"].get("CONN_MAX_AGE", 0),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"MIRROR": "default"},
    }
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# French first: most beneficiaries and every funder read French; English is the second language.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves the static files from every process, gunicorn included: those gathered in
# STATIC_ROOT by `manage.py collectstatic`, else straight from the apps, so that a first run
# needs no collect step.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)
# Files staff upload (funders' logos). The app serves a logo through its own view
# (beneficiary_app.web.views.funder_logo), so no web server rule is needed for them.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
# Where those files and the exports built by a task (backoffice.exports) are kept: Django's
# file storage, which every app server and worker of a production must share, since one builds
# a file that another serves. The file system under MEDIA_ROOT by default (a volume mounted on
# every machine); any storage class instead, with its options as JSON: an S3 bucket with
# core.storage.ObjectStorage and {"bucket_name": ..., "region_name": ...} (README, "Several
# machines").
STORAGES = {
    "default": {
        "BACKEND": env.str(
            "FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json("FILE_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Celery. Without CELERY_BROKER_URL, kombu's SQLAlchemy transport keeps the queue in a SQLite
# file: a real worker process, no broker server. Production uses Redis.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks late, a task whose worker was killed goes back to the queue when the broker's
# visibility timeout ends (Redis' default: one hour). Every task has a hard time limit, and the
# visibility timeout is set just above the longest one: a running task is never handed to a
# second worker, and a lost one comes back within minutes. Most tasks work in small batches;
# the few that walk a whole ledger, campaign or file get a longer limit.
CELERY_TASK_TIME_LIMIT = 5 * 60
LONG_TASK_TIME_LIMIT = 20 * 60
CELERY_TASK_ANNOTATIONS = {
    name: {"time_limit": LONG_TASK_TIME_LIMIT}
    for name in (
        "ledger.tasks.verify_ledger",
        "reconciliation.tasks.reconcile_ledger",
        "funders.tasks.campaign_run",
        "funders.tasks.campaigns_reevaluate",
        "funders.tasks.allocation_import_check",
        "funders.tasks.allocation_import_apply",
        "funders.tasks.profile_import_check",
        "funders.tasks.profile_import_apply",
    )
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):  # the embedded broker has no timeout
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int(
            "CELERY_VISIBILITY_TIMEOUT", default=LONG_TASK_TIME_LIMIT + 60
        )
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# An entry keeps its name when its task is renamed: the database scheduler updates the entry of
# that name, where a new name would leave the old entry behind, calling a task that is gone.
CELERY_BEAT_SCHEDULE = {
    "expire-holds": {"task": "wallet.tasks.expire_holds", "schedule": 300.0},
    "expire-authorizations": {"task": "merchants.tasks.expire_authorizations", "schedule": 300.0},
    "expire-allocations": {"task": "funders.tasks.allocations_expire_due", "schedule": 900.0},
    # The dashboards read this rollup and the payments made since: the fewer, the faster.
    "fold-dashboards": {"task": "funders.tasks.rollup_fold", "schedule": 60.0},
    "recurring-allocations": {
        "task": "funders.tasks.recurring_allocations_run_due",
        "schedule": 3600.0,
    },
    # Campaigns that run every day, week or month; each knows when it last ran.
    "run-due-campaigns": {"task": "funders.tasks.campaigns_run_due", "schedule": 3600.0},
    "verify-ledger": {"task": "ledger.tasks.verify_ledger", "schedule": 86400.0},
    "reconcile-ledger": {"task": "reconciliation.tasks.reconcile_ledger", "schedule": 86400.0},
    # Each merchant's batch up to midnight, Paris time (CELERY_TIMEZONE), just after it.
    "close-settlement-batches": {
        "task": "merchants.tasks.close_settlement_batches",
        "schedule": crontab(hour=0, minute=15),
    },
    "retry-due-webhooks": {"task": "merchants.tasks.retry_due_webhooks", "schedule": 60.0},
    # A payment's message and a capture's low-balance check: their notices drained every
    # second (notifications/services.py); the payment and the capture queue nothing. A run not
    # taken within 5 s is dropped: the next one, a second later, takes the same notices.
    "drain-decision-notices": {
        "task": "notifications.tasks.drain_notices",
        "schedule": 1.0,
        "options": {"expire_seconds": 5},
    },
    "send-due-notifications": {
        "task": "notifications.tasks.send_due_notifications",
        "schedule": 300.0,
    },
    "expiry-reminders": {
        "task": "notifications.tasks.send_expiry_reminders",
        "schedule": 3600.0,
    },
    # The retention schedule (gdpr/retention.py, docs/RETENTION.md), at night.
    "enforce-retention": {
        "task": "gdpr.tasks.retention_enforce",
        "schedule": crontab(hour=3, minute=30),
    },
    # Closed programs whose aid has all ended: their float paid back to the funder.
    "program-returns": {"task": "funders.tasks.program_returns_due", "schedule": 3600.0},
    # People not using their aid, once a day at 10:00 Paris time: the messages leave by day.
    "nonuse-detect": {
        "task": "funders.tasks.nonuse_detect",
        "schedule": crontab(hour=10, minute=0),
    },
    # Sent by beat, run by a worker: /readyz reads its age. A heartbeat no worker took within
    # the minute is dropped (the database scheduler's expire_seconds), not run late.
    "heartbeat": {
        "task": "operations.tasks.heartbeat_record",
        "schedule": 60.0,
        "options": {"expire_seconds": 60},
    },
}

# Readiness (/readyz, operations/readiness.py): how long each check may wait on PostgreSQL or the
# broker, and how old the Celery heartbeat (every minute) may be before the platform is reported
# not ready.
HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=2.0)
HEALTH_HEARTBEAT_MAX_AGE_SECONDS = env.int("HEALTH_HEARTBEAT_MAX_AGE_SECONDS", default=180)
# While PostgreSQL cannot be reached, every request is answered 503 with this Retry-After
# (core/api_errors.py): a crashed server restarts, or a standby is promoted, in a few seconds.
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int(
    "DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS", default=2
)
# A load balancer probes each server over plain HTTP: the probes answer there even when
# SECURE_SSL_REDIRECT sends everything else to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz)$"]

# The platform's public address, for links in messages (the information notice in the first
# message each contact receives, notifications/privacy.py).
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000")
# Who answers for the beneficiaries' personal data, in the information notice of the app
# (/app/privacy/): the data protection officer's address, and the operator's postal address.
DPO_CONTACT = env.str("DPO_CONTACT", default="dpo@example.org")

# Messages to beneficiaries. Email goes through EMAIL_BACKEND, SMS through SMS_BACKEND, the
# dotted path of a class with `send(phone, text)` (see notifications/channels.py). In
# development (DEBUG) both are written to the console, codes shown; otherwise email goes to the
# SMTP server of the EMAIL_HOST... settings and SMS are only recorded in the outbox until a
# provider's backend is set. A console backend without DEBUG is an error of `manage.py check`
# (wallet/checks.py): it would write sign-in codes to the logs.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="notifications.channels.ConsoleEmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# The beneficiaries' app as people open it: every message that grants aid carries this link.
APP_URL = env.str("APP_URL", default="http://127.0.0.1:8000/app/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Aid wallet <no-reply@localhost>")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# A message is sent with its outbox row locked: an SMTP server that never answers must not
# hold the lock for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
SMS_BACKEND = env.str(
    "SMS_BACKEND",
    default="notifications.channels.ConsoleSMSBackend"
    if DEBUG
    else "notifications.channels.OutboxSMSBackend",
)
# The shared secret the SMS provider sends with each call of its webhooks, POST /hooks/sms/brevo
# (Brevo's events, as a bearer token) and POST /hooks/sms/inbound (any provider, in
# X-SMS-Webhook-Secret); without one, the webhooks do not exist.
SMS_INBOUND_SECRET = env.str("SMS_INBOUND_SECRET", default="")
# Brevo (notifications/brevo.py), for SMS with SMS_BACKEND=notifications.brevo.BrevoSMSBackend
# and for email with EMAIL_BACKEND=anymail.backends.brevo.EmailBackend: the account's API key,
# the name SMS come from (11 letters or digits at most, registered with Brevo), and the public
# address of /hooks/sms/brevo that Brevo posts each SMS's events to.
BREVO_API_KEY = env.str("BREVO_API_KEY", default="")
BREVO_API_URL = env.str("BREVO_API_URL", default="https://api.brevo.com/v3/")
SMS_SENDER = env.str("SMS_SENDER", default="Aidwallet")
SMS_STATUS_WEBHOOK_URL = env.str("SMS_STATUS_WEBHOOK_URL", default="")
# A message is sent with its outbox row locked: a provider that never answers must not hold
# the lock for ever.
SMS_TIMEOUT = env.int("SMS_TIMEOUT", default=20)
# django-anymail: email through any provider it supports by setting EMAIL_BACKEND to its
# backend (anymail.backends.brevo.EmailBackend, ...mailjet..., ...) and that provider's key
# here. Its tracking webhook, /hooks/email/<provider>/tracking/, takes HTTP basic
# authentication with ANYMAIL_WEBHOOK_SECRET ("user:password", set the same in the provider's
# webhook URL; without it the webhook does not exist): bounces and complaints then mark the
# contact failing.
ANYMAIL = {
    "BREVO_API_KEY": BREVO_API_KEY,
    "BREVO_API_URL": BREVO_API_URL,
    "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="") or None,
    "REQUESTS_TIMEOUT": EMAIL_TIMEOUT,
}
# Web push to the installed app: a VAPID P-256 key pair and a contact for the push services
# ("mailto:..." or an https URL). The private key is base64url, its 32 raw bytes or the body of
# the PEM that `vapid --gen` writes; the public key is what `vapid --applicationServerKey`
# prints. Without all three, app notifications are off.
WEBPUSH_VAPID_PRIVATE_KEY = env.str("WEBPUSH_VAPID_PRIVATE_KEY", default="")
WEBPUSH_VAPID_PUBLIC_KEY = env.str("WEBPUSH_VAPID_PUBLIC_KEY", default="")
WEBPUSH_VAPID_SUBJECT = env.str("WEBPUSH_VAPID_SUBJECT", default="")
# The push services whose endpoints are accepted (the browser picks one; we POST to it): a host,
# "*.domain" for any host under the domain, ":port" when not 443. Those of Chrome and Opera
# (FCM), Firefox, Safari and Edge.
WEBPUSH_ALLOWED_HOSTS = env.list(
    "WEBPUSH_ALLOWED_HOSTS",
    default=[
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "*.push.services.mozilla.com",
        "*.push.apple.com",
        "*.notify.windows.com",
    ],
)

# One-time payment codes: lifetime; how long a merchant that sent too many wrong codes on one
# wallet is refused on it; the wrong codes one merchant (all its API keys together) may send per
# window, and all merchants together per window, before they must wait. Each wrong code succeeds
# with a probability of at most 10^-6 (wallet/payment_codes.py): these caps bound the attack.
PAYMENT_CODE_TTL_SECONDS = env.int("PAYMENT_CODE_TTL_SECONDS", default=300)
PAYMENT_CODE_LOCKOUT_SECONDS = env.int("PAYMENT_CODE_LOCKOUT_SECONDS", default=900)
PAYMENT_CODE_FAILURES_PER_MERCHANT = env.int("PAYMENT_CODE_FAILURES_PER_MERCHANT", default=20)
PAYMENT_CODE_FAILURE_WINDOW_SECONDS = env.int("PAYMENT_CODE_FAILURE_WINDOW_SECONDS", default=3600)
PAYMENT_CODE_FAILURES_PLATFORM = env.int("PAYMENT_CODE_FAILURES_PLATFORM", default=500)
PAYMENT_CODE_PLATFORM_FAILURE_WINDOW_SECONDS = env.int(
    "PAYMENT_CODE_PLATFORM_FAILURE_WINDOW_SECONDS", default=3600
)
# A merchant's API keys: at most this many active at once (each key is a secret to leak).
MERCHANT_API_KEYS_MAX = env.int("MERCHANT_API_KEYS_MAX", default=10)
# How long a request may trust a cached API key (merchants/api_keys.py); a revocation or a change
# to the merchant forgets it at once.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=30)
# A new payment by code on PostgreSQL reads in two statements and writes in one
# (core/one_statement.py, wallet/hot_path.py); off, the portable ORM path runs, as on SQLite.
AUTHORIZE_ONE_STATEMENT = env.bool("AUTHORIZE_ONE_STATEMENT", default=True)

# The beneficiary app (wallet/app): how long a sign-in code works, after how many days
# without use an app token stops working, and after how many days it stops however used.
APP_SIGN_IN_CODE_TTL_SECONDS = env.int("APP_SIGN_IN_CODE_TTL_SECONDS", default=600)
APP_TOKEN_IDLE_DAYS = env.int("APP_TOKEN_IDLE_DAYS", default=90)
APP_TOKEN_MAX_AGE_DAYS = env.int("APP_TOKEN_MAX_AGE_DAYS", default=180)

# The retention schedule (docs/RETENTION.md), in days after each record's date, enforced every
# night by gdpr.tasks.retention_enforce. RETENTION_<RULE>_DAYS overrides one, say to follow a
# funder's own schedule. The ledger and payment decisions are not in it: kept ten years, as
# accounting law requires.
RETENTION_DAYS = {
    rule: env.int(f"RETENTION_{rule.upper()}_DAYS", default=days)
    for rule, days in {
        "sign_in_codes": 1,  # after the code expired
        "app_tokens": 30,  # after the session ended
        "sign_in_messages": 1,  # the outbox's copy of a sign-in code
        "outbox_texts": 365,  # texts and addresses of every message
        "contact_changes": 365,  # after the change was decided or expired
        "push_subscriptions": 30,  # after the device was turned off
        "access_logs": 180,  # the admin's sign-in records (CNIL: six months to a year)
        "import_files": 90,  # the files funders sent, and their reports
        "program_exports": 30,  # the export files funders downloaded, and their rows
        "stale_profiles": 730,  # eligibility profiles, two years after the last aid
        "stale_people": 1095,  # a person with no aid for three years is pseudonymised
    }.items()
}

# --- The shop's till (/shop/) -------------------------------------------------------------
# INSEE's API Sirene, where a registering shop's SIRET is looked up (merchants/sirene.py): the
# key of INSEE's API portal; without one the shop types its details. SIRENE_CLIENT is the class
# that asks it (another register, or a fake, by its dotted path).
SIRENE_API_BASE = env.str("SIRENE_API_BASE", default="https://api.insee.fr/api-sirene/3.11")
SIRENE_API_KEY = env.str("SIRENE_API_KEY", default="")
SIRENE_CLIENT = env.str("SIRENE_CLIENT", default="merchants.sirene.SireneClient")
# Shop staff: a session ends after SESSION_COOKIE_AGE without a request, and after this many
# hours however used (a working day); sign-in tries per e-mail address and per client address
# in a quarter of an hour; how long a cashier's invitation link works.
SHOP_SESSION_MAX_HOURS = env.int("SHOP_SESSION_MAX_HOURS", default=12)
SHOP_SIGN_IN_TRIES_PER_EMAIL = env.int("SHOP_SIGN_IN_TRIES_PER_EMAIL", default=5)
SHOP_SIGN_IN_TRIES_PER_IP = env.int("SHOP_SIGN_IN_TRIES_PER_IP", default=30)
SHOP_INVITATION_DAYS = env.int("SHOP_INVITATION_DAYS", default=7)

# How long an authorization hold stays pending before it is voided automatically.
HOLD_TTL_DAYS = env.int("HOLD_TTL_DAYS", default=7)

# Stripe Issuing. Without a secret key, card features are disabled; STRIPE_API_BASE points the
# stripe library elsewhere (the tests' local fake server).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# Stripe's own limit on each card payment, a first line under our engine's rules (cents).
STRIPE_CARD_PER_AUTHORIZATION_CAP = env.int("STRIPE_CARD_PER_AUTHORIZATION_CAP", default=50_000)
# Stripe requires a cardholder's billing address and we keep no street address: the
# beneficiary's postcode is used when known, this address (the platform's) otherwise.
STRIPE_BILLING_LINE1 = env.str("STRIPE_BILLING_LINE1", default="Adresse non communiquée")
STRIPE_BILLING_POSTCODE = env.str("STRIPE_BILLING_POSTCODE", default="75001")
# The platform operator's name, on merchants' statements.
OPERATOR_NAME = env.str("OPERATOR_NAME", default="Aidwallet")
# The operator's bank account, which pays merchants by SEPA credit transfer (pain.001 files
# downloaded from the admin). Without a name and an IBAN, no SEPA file can be built.
SEPA_DEBTOR_NAME = env.str("SEPA_DEBTOR_NAME", default="")
SEPA_DEBTOR_IBAN = env.str("SEPA_DEBTOR_IBAN", default="")
SEPA_DEBTOR_BIC = env.str("SEPA_DEBTOR_BIC", default="")
STRIPE_BILLING_CITY = env.str("STRIPE_BILLING_CITY", default="Paris")

# The largest body a request may have, files uploaded to the admin aside: an API request is a
# few hundred bytes; a larger body is refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1_048_576

REST_FRAMEWORK = {
    # JSON only: any other content type is refused with 415 unsupported_media_type.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    # DRF's JSON bytes, written by orjson (core/renderers.py); the browsable API as before.
    "DEFAULT_RENDERER_CLASSES": [
        "core.renderers.OrjsonRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # DRF's negotiation, answered at once for no Accept, */* and application/json.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.renderers.JsonFirstNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {
        "merchant_key": env.str("MERCHANT_API_RATE", default="100/second"),
        "merchant_key_creation": env.str("MERCHANT_API_KEY_CREATION_RATE", default="10/day"),
        "merchant_application": env.str("MERCHANT_APPLICATION_RATE", default="20/hour"),
        # Sign-in: per contact (hourly and daily: 10 codes of 5 tries would still be 50
        # guesses a day, so tries are capped per contact too) and per client address (an
        # IPv6 client counts per /64, the block one subscriber gets).
        "app_sign_in_code_contact": env.str("APP_SIGN_IN_CODE_RATE", default="5/hour"),
        "app_sign_in_code_contact_day": env.str("APP_SIGN_IN_CODE_DAILY_RATE", default="10/day"),
        "app_sign_in_code_ip": env.str("APP_SIGN_IN_CODE_IP_RATE", default="30/hour"),
        "app_sign_in_token_ip": env.str("APP_SIGN_IN_TOKEN_RATE", default="20/hour"),
        "app_sign_in_token_contact_day": env.str("APP_SIGN_IN_TOKEN_DAILY_RATE", default="20/day"),
        "app_token": env.str("APP_API_RATE", default="20/second"),
    },
    # The client's address for per-IP throttles is REMOTE_ADDR, unless NUM_PROXIES reverse
    # proxies in front add X-Forwarded-For (set 1 behind one proxy). Trusting the header
    # without a proxy would let a client pick its own address and escape the limits.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aid wallet API",
    # The merchant docs' introduction (base URL, keys, quick start, errors, idempotency,
    # webhooks), shown at the top of /api/merchant/v1/docs.
    "DESCRIPTION": (BASE_DIR / "merchant_api" / "introduction.md").read_text(encoding="utf-8"),
    "VERSION": "1.0.0",
    # OpenAPI 3.1: a nullable field is `type: [..., "null"]` / `oneOf: [..., {type: null}]`,
    # which strict tools read as written; 3.0's `allOf` + `nullable` without a type is refused
    # by them on every null (`"decline": null` on each approved payment).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVERS": [{"url": "/api/merchant/v1"}],
    "SERVE_URLCONF": "merchant_api.urls",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Redoc's fonts are Google's web fonts, which the docs pages do not load (core/api_docs.py):
    # the reader's system fonts instead.
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
                "headings": {
                    "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
                },
                "code": {"fontFamily": "ui-monospace, Menlo, Consolas, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # The events POSTed to merchants' webhook endpoints (OpenAPI 3.1 `webhooks`); the app
    # API's settings (beneficiary_app/urls.py) have none.
    "WEBHOOKS": [
        f"merchant_api.webhook_events.{name}"
        for name in (
            "APPROVED",
            "PARTIALLY_APPROVED",
            "DECLINED",
            "REVERSED",
            "EXPIRED",
            "CAPTURED",
            "REFUNDED",
        )
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.require_output_fields",
        "core.openapi.document_shared_headers",
    ],
    # Here and not in the app API's own schema settings: drf-spectacular caches these names
    # once per process, so per-schema overrides would depend on which schema was drawn first.
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "wallet.models.decisions.Decision.Status",
        "CardStatusEnum": "wallet.models.Card.Status",
    },
}

# Throttling counts requests in the cache: per process by default, shared in Redis in production.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# The request id (core/request_id.py, django-guid): the load balancer's X-Request-ID when it
# is a UUID, else one drawn here; sent back in the response's X-Request-ID. Its Celery hooks are
# ours (config/celery.py), not django-guid's integration.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "INTEGRATIONS": [],
}

# Logs go to the standard error, one JSON object per line in production (LOG_FORMAT=json, the
# default without DEBUG) for a log collector to index by field, plain text in development.
# Fields: docs/OPERATIONS.md.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "core.log_filters.RedactSecrets"},
        "request_id": {"()": "core.request_id.RequestIdFilter"},
    },
    "formatters": {
        "json": {
            "()": "core.log_filters.RedactedJsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s %(task_name)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": True,
            # UTF-8 as written (French text, the "…" of a masked secret), not \u escapes.
            "json_ensure_ascii": False,
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    # Every record written is masked, whichever logger it comes from...
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_secrets", "request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # ...and Django's request log at the source, for any other handler too: it logs the
        # path of every refused request, where a client may have put a card number or a card
        # reference.
        "django.request": {"filters": ["redact_secrets"]},
        # django-guid says at INFO, on every request, whether the id came with it.
        "django_guid": {"level": "WARNING"},
    },
}

# /metrics (operations/metrics.py) answers a scraper that sends this token
# ("Authorization: Bearer <token>"), or staff with the "read the platform's metrics"
# permission; anyone else gets 404 (401 for a wrong token). Without a token, staff only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
