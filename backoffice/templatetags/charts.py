from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def with_nonce(svg: SafeString, nonce: str) -> SafeString:
    """A pygal chart with the page's Content-Security-Policy nonce on its style sheet: pygal
    writes the chart's colours and fonts in a <style> inside the SVG, which the browser applies
    only with the nonce drawn for the response."""
    return mark_safe(svg.replace("<style", format_html('<style nonce="{}"', nonce), 1))
