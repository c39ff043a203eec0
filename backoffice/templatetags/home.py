from django import template

from backoffice.home import home_figures

register = template.Library()


@register.simple_tag(takes_context=True)
def funders_home(context):
    """The home's figures for the signed-in user (see backoffice.home)."""
    return home_figures(context["request"].user)
