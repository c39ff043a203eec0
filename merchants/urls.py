from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from merchants import api

app_name = "merchant_api"

urlpatterns = [
    path("authorizations", api.AuthorizationListCreateApi.as_view(), name="authorizations"),
    path(
        "authorizations/<str:reference>",
        api.AuthorizationDetailApi.as_view(),
        name="authorization",
    ),
    path("schema", SpectacularAPIView.as_view(urlconf="merchants.urls"), name="schema"),
]
