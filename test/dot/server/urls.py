"""Routes: the toolkit's endpoints under /o/ (token, introspect, revoke_token)
and a protected resource at /api/hello/ that needs a valid bearer token with
scope "read"."""
from django.http import JsonResponse
from django.urls import include, path
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views.generic import ScopedProtectedResourceView


class Hello(ScopedProtectedResourceView):
    """GET with "Authorization: Bearer TOKEN". The toolkit answers 403 with
    an empty body when the token is unknown, expired or lacks scope read."""

    required_scopes = ["read"]

    def get(self, request, *args, **kwargs):
        # The mixin has validated the token but does not hand it to the view:
        # find it again where oauthlib did (header, else access_token param).
        auth = request.META.get("HTTP_AUTHORIZATION", "").split()
        if len(auth) == 2 and auth[0].lower() == "bearer":
            token = auth[1]
        else:
            token = request.GET.get("access_token")
        at = get_access_token_model().objects.select_related("application").get(token=token)
        return JsonResponse(
            {
                "client_id": at.application.client_id if at.application else None,
                "scope": at.scope,
                "expires": at.expires.isoformat(),
            }
        )


urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/hello/", Hello.as_view()),
]
