"""The back office stays out of search engines: its pages are for staff, and even its sign-in
page tells a crawler who runs the platform and where."""

from django.urls import reverse


class AdminNotIndexed:
    """X-Robots-Tag: noindex on every response under the admin's URL, its sign-in and password
    reset pages included (robots.txt would only ask crawlers not to fetch them, and would list
    the admin's address for anyone to read)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(reverse("admin:index")):
            response["X-Robots-Tag"] = "noindex, nofollow"
        return response
