"""The APIs' JSON renderer: DRF's JSONRenderer, its bytes written by orjson; DRF's content
negotiation, short for the usual Accept headers."""

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.encoders import JSONEncoder

# orjson writes datetimes itself (with "+00:00" where DRF writes "Z"): they are passed to DRF's
# encoder instead, as are dataclasses. Strings, ints, bools, None, lists, dicts, UUIDs and enums
# orjson writes as json.dumps does.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# A float with a negative exponent: json.dumps writes 1e-07, orjson 1e-7.
_SHORT_EXPONENT = re.compile(rb"\de-\d")


class OrjsonRenderer(JSONRenderer):
    """The same bytes as DRF's JSONRenderer (compact, UTF-8, U+2028 and U+2029 escaped, the
    same encoding of dates, decimals, lazy translations), in about half DRF's time on an API
    answer (BENCHMARKS.md). An indented answer (`Accept: application/json; indent=4`, the
    browsable API's), a dict with keys other than strings, and a float with a negative exponent
    go through DRF's own renderer, the one that writes them exactly, as does any answer under
    settings other than DRF's defaults (UNICODE_JSON and COMPACT_JSON true).

    Left different: a NaN or an infinite float, which DRF refuses (an error) and orjson writes
    as null; no API answer carries a float (money is integers)."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type or "", renderer_context or {})
        if indent is None and self.compact and not self.ensure_ascii:
            try:
                rendered = orjson.dumps(data, default=_drf_default, option=_OPTIONS)
            except orjson.JSONEncodeError:
                pass  # a non-string key, a lone surrogate: DRF's renderer answers as it would
            else:
                if _SHORT_EXPONENT.search(rendered) is None:
                    return rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
                        b"\xe2\x80\xa9", b"\\u2029"
                    )
        rendered = super().render(data, accepted_media_type, renderer_context)
        assert isinstance(rendered, bytes)  # DRF's JSONRenderer encodes its text
        return rendered


_ENCODER = JSONEncoder()


def _drf_default(value: object) -> object:
    # Called by orjson for what it does not write itself: DRF's encoder turns it into what
    # json.dumps would write (a datetime into its ISO text with Z, a Decimal into a float...).
    return _ENCODER.default(value)


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for what nearly every client of the APIs
    sends: no Accept header, `Accept: */*` or `Accept: application/json`, with no format asked
    in the URL. DRF answers those with the first renderer (the JSON one) and its media type, as
    this does, after parsing the header into media types and ranking them (a seventieth of a
    payment's processor time, BENCHMARKS.md issue 19 part 7). Anything else goes through DRF's
    negotiation."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)  # DRF's view passes a list; any iterable is read once
        if renderers and not format_suffix:
            first = renderers[0].media_type
            accept = request.META.get("HTTP_ACCEPT", "*/*")
            if (accept == "*/*" or accept == first) and (
                self.settings.URL_FORMAT_OVERRIDE not in request.query_params
            ):
                return renderers[0], first
        negotiated: tuple[BaseRenderer, str] = super().select_renderer(
            request, renderers, format_suffix
        )
        return negotiated
