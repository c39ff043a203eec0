import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from merchants.events import EventType

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _insecure_localhost_allowed() -> bool:
    return bool(settings.DEBUG or getattr(settings, "WEBHOOKS_ALLOW_INSECURE_LOCALHOST", False))


def _is_loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Local-use NAT64 (RFC 8215): what it translates to is on the operator's own network.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


# The well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to, when it carries one: IPv4-mapped
    (::ffff:a.b.c.d), 6to4 (2002:AABB:CCDD::), Teredo (server and client), NAT64
    (64:ff9b::a.b.c.d) and IPv4-compatible (::a.b.c.d, which includes :: and ::1)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in _NAT64 or int(ip) >> 32 == 0:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # no IPv6 zone
    if ip.version == 6:
        if ip in _NAT64_LOCAL:
            return False
        # ::ffff:10.0.0.1 is 10.0.0.1, and 2002:7f00:1:: reaches 127.0.0.1: Python calls some of
        # these forms global, whatever they carry.
        if embedded := _embedded_ipv4(ip):
            return all(inner.is_global for inner in embedded)
    return ip.is_global


def validate_webhook_url(url: str) -> None:
    """An endpoint's URL: https to a public host, with no credentials in it. A local address
    (localhost, 127.0.0.1, ::1), over http or https, only in development (DEBUG) or where
    WEBHOOKS_ALLOW_INSECURE_LOCALHOST is set. An IP address must be a public one."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise ValidationError(_("This URL is not valid."), code="invalid_url") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValidationError(_("A webhook URL must start with https://."), code="url_scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(
            _("A webhook URL must not contain a user name or a password."), code="url_credentials"
        )
    host = parts.hostname or ""
    if not host:
        raise ValidationError(_("This URL has no host."), code="invalid_url")
    if _is_loopback(host):
        if not _insecure_localhost_allowed():
            raise ValidationError(
                _("A local address is accepted only in development."), code="url_local"
            )
        return
    if scheme != "https":
        raise ValidationError(_("A webhook URL must start with https://."), code="url_scheme")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: where it points is checked when sending
    if not _is_public(host):
        raise ValidationError(
            _("A webhook URL must point to a public address."), code="url_private_address"
        )


def validate_event_types(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("A list of event types is expected."), code="invalid_event_types")
    unknown = sorted(set(value) - set(EventType.values))
    if unknown:
        raise ValidationError(
            _("Unknown event types: %(types)s."),
            code="invalid_event_types",
            params={"types": ", ".join(unknown)},
        )


# What card networks send in the authorization's merchant data: the acquirer's merchant id
# (ISO 8583 field 42, up to 15 characters; some networks use longer ids) and the terminal id
# (field 41, 8 characters). Letters and digits only, so that an id typed with a space or a dash
# never silently fails to match the one the network sends.
validate_network_id = RegexValidator(
    r"^[A-Za-z0-9]{1,35}\Z",
    _("A card network merchant id is 1 to 35 letters or digits."),
    code="invalid_network_id",
)
validate_terminal_id = RegexValidator(
    r"^[A-Za-z0-9]{1,16}\Z",
    _("A terminal id is 1 to 16 letters or digits."),
    code="invalid_terminal_id",
)
