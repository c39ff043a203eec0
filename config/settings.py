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
    "operations",
    "landing",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "backoffice.middleware.AdminNotIndexed",
]

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
        "DIRS": [],
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
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A server that does not answer is given up after this many seconds instead of the
    # system's TCP timeout (minutes): /readyz must answer fast, and a request too.
    # `?connect_timeout=N` in DATABASE_URL sets another.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
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
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# An entry keeps its name when its task is renamed: the database scheduler updates the entry of
# that name, where a new name would leave the old entry behind, calling a task that is gone.
CELERY_BEAT_SCHEDULE = {
    "expire-holds": {"task": "wallet.tasks.expire_holds", "schedule": 300.0},
    "expire-authorizations": {"task": "merchants.tasks.expire_authorizations", "schedule": 300.0},
    "expire-allocations": {"task": "funders.tasks.allocations_expire_due", "schedule": 900.0},
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
    "send-due-notifications": {
        "task": "notifications.tasks.send_due_notifications",
        "schedule": 300.0,
    },
    "expiry-reminders": {
        "task": "notifications.tasks.send_expiry_reminders",
        "schedule": 3600.0,
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
# A load balancer probes each server over plain HTTP: the probes answer there even when
# SECURE_SSL_REDIRECT sends everything else to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz)$"]

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
# The shared secret the SMS provider sends in X-SMS-Webhook-Secret with each inbound SMS
# (POST /hooks/sms/inbound); without one, the webhook does not exist.
SMS_INBOUND_SECRET = env.str("SMS_INBOUND_SECRET", default="")
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

# The beneficiary app (wallet/app): how long a sign-in code works, after how many days
# without use an app token stops working, and after how many days it stops however used.
APP_SIGN_IN_CODE_TTL_SECONDS = env.int("APP_SIGN_IN_CODE_TTL_SECONDS", default=600)
APP_TOKEN_IDLE_DAYS = env.int("APP_TOKEN_IDLE_DAYS", default=90)
APP_TOKEN_MAX_AGE_DAYS = env.int("APP_TOKEN_MAX_AGE_DAYS", default=180)

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
    "DESCRIPTION": "Merchant API: authorize payments against beneficiaries' earmarked aid.",
    "VERSION": "1.0.0",
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
    # Here and not in the app API's own schema settings: drf-spectacular caches these names
    # once per process, so per-schema overrides would depend on which schema was drawn first.
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "wallet.models.decisions.Decision.Status",
        "CardStatusEnum": "wallet.models.Card.Status",
    },
}

# Throttling counts requests in the cache: per process by default, shared in Redis in production.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "core.log_filters.RedactSecrets"}},
    # Every record written is masked, whichever logger it comes from...
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # ...and Django's request log at the source, for any other handler too: it logs the path of
    # every refused request, where a client may have put a card number or a card reference.
    "loggers": {"django.request": {"filters": ["redact_secrets"]}},
}
