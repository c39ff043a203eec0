"""The bearer-token base of the APIs: `Authorization: Bearer <secret>`. Each API says how a
secret is looked up (a merchant's API key, a beneficiary's app token) and in which words a
malformed header is refused; the parsing, and the challenge sent back with a 401, are here."""

from typing import TYPE_CHECKING

from rest_framework import authentication, exceptions
from rest_framework.request import Request

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class BearerAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"
    malformed_message: "StrOrPromise"  # the header is not "Bearer <secret>"
    invalid_message: "StrOrPromise"  # the secret is not one we could have issued (not ASCII)

    def authenticate(self, request: Request) -> tuple[object, object] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # another scheme, or none: not ours to refuse
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(self.malformed_message)
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(self.invalid_message) from exc
        return self.authenticate_secret(secret)

    def authenticate_secret(self, secret: str) -> tuple[object, object]:
        """The (user, auth) pair for `secret`; AuthenticationFailed when it opens nothing."""
        raise NotImplementedError

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
