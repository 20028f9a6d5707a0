"""Routes: the toolkit's endpoints under /o/ (token, introspect, revoke) and
a protected resource at /api/hello/ that accepts a valid bearer token."""
from django.http import JsonResponse
from django.urls import include, path
from oauth2_provider.models import AccessToken
from oauth2_provider.views.generic import ScopedProtectedResourceView


class Hello(ScopedProtectedResourceView):
    required_scopes = ["read"]

    def get(self, request, *args, **kwargs):
        token = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[-1]
        at = AccessToken.objects.select_related("application").get(token=token)
        return JsonResponse({"client_id": at.application.client_id, "scope": at.scope})


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/hello/", Hello.as_view()),
]
