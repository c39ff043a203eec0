from django.urls import path

from beneficiary_app.web import views

app_name = "mobile"

urlpatterns = [
    path("", views.shell, name="shell"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("privacy/", views.privacy_notice, name="privacy"),
    path("funders/<int:funder_id>/logo", views.funder_logo, name="funder-logo"),
]
