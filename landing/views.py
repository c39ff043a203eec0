from django.views.generic import TemplateView


class LandingView(TemplateView):
    """/: where each kind of visitor finds their door. Static but for the language, which
    LocaleMiddleware picks (Accept-Language, else French)."""

    template_name = "landing/index.html"
