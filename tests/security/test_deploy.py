"""The production settings: `manage.py check --deploy` finds nothing to say, every answer says
where its scripts and styles may come from (Content-Security-Policy) and that the site is https
only (HSTS), the admin stays out of search engines and a staff session ends when left idle."""

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "wallet.example.org",
    # Rate limits counted in a cache every process shares (operations.W001 otherwise).
    "CACHE_URL": "redis://127.0.0.1:6379/1",
}
# The browser tests' switch (tests/browser/conftest.py), which the check rightly refuses in
# production, the key, and the switches an operator may turn: the check must pass with their
# defaults.
LEFT_OUT = (
    "DJANGO_ALLOW_ASYNC_UNSAFE",
    "SECRET_KEY",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";"))}


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    inherited = {key: value for key, value in os.environ.items() if key not in LEFT_OUT}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_finds_nothing_under_the_production_settings():
    result = _check_deploy(PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_reports_the_development_key_when_none_is_set():
    result = _check_deploy({key: PRODUCTION_ENV[key] for key in ("DEBUG", "ALLOWED_HOSTS")})

    assert result.returncode == 1
    assert "security.W009" in result.stderr, result.stdout + result.stderr


def test_a_page_answers_with_the_content_security_policy_and_hsts(client):
    response = client.get("/app/", secure=True)

    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert _policy(response) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }


def test_the_api_docs_page_runs_only_its_own_scripts_with_the_nonce(client):
    response = client.get("/api/merchant/v1/docs", secure=True)

    assert response.status_code == 200
    nonce = re.search(rb'nonce="([^"]+)"', response.content).group(1).decode()
    policy = _policy(response)
    assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    # Beyond the nonce, only the two style sheets Redoc writes as it loads, by their hash.
    assert policy["style-src"][:2] == ["'self'", f"'nonce-{nonce}'"]
    assert all(source.startswith("'sha256-") for source in policy["style-src"][2:])
    # No script, style sheet or font from another origin, and no script written in the page.
    assert not re.search(rb'(src|href)="https?://', response.content)
    assert not re.search(rb"<script(?![^>]*\bsrc=)", response.content)


def test_the_admin_sign_in_page_is_not_indexed(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex, nofollow"


@pytest.fixture
def operator_client(client, db):
    operator = get_user_model().objects.create_superuser("operator", "op@example.org", "x")
    client.force_login(operator)
    return client


def test_a_staff_session_ends_after_an_hour_without_a_request(operator_client):
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        response = operator_client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_each_request_pushes_the_end_of_the_session_back(operator_client):
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=50)):
        assert operator_client.get("/admin/").status_code == 200
    with time_machine.travel(start + timedelta(minutes=100)):
        assert operator_client.get("/admin/").status_code == 200
