"""The APIs' request parser: DRF's JSON parser, bounded."""

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.api_errors import RequestTooLarge
from core.types import JSONValue


class JSONParser(parsers.JSONParser):
    """Refuses a body above DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads the stream itself, past
    Django's check on request.body) and one nested too deep for Python's parser, which would
    otherwise raise a RecursionError: a 500."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, object] | None = None,
    ) -> JSONValue:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            content = stream.read(limit + 1)
            if len(content) > limit:
                raise RequestTooLarge()
            stream = io.BytesIO(content)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_("The JSON body is nested too deeply.")) from exc
