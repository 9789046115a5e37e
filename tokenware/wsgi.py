"""``TokenwareMiddleware`` for WSGI: Flask's ``app.wsgi_app``, Django, any WSGI app.

::

    from tokenware.wsgi import TokenwareMiddleware

    app.wsgi_app = TokenwareMiddleware(
        app.wsgi_app, tokenware=tw, protect=["/api/"], public=["/api/health"]
    )

The policy (path rules, the HTTP contract, the throttling seam) is
:mod:`tokenware.core.http`, shared with :mod:`tokenware.asgi`; this module
only reads the environ and writes the response. The request's identity is in
``environ["tokenware.identity"]`` (:class:`~tokenware.identity.Identity` or
:data:`~tokenware.identity.ANONYMOUS`), the instance in
``environ["tokenware.instance"]`` (PEP 3333 wants a dot in every key whose
value is not a string; ``wsgiref.validate`` enforces it), and on public
routes the reason credentials that were sent did not authenticate in
``environ["tokenware.error"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tokenware._drive import run_sync
from tokenware._middleware import Middleware
from tokenware.core.http import Headers, RequestView, fast_outcome, merge_headers, pipeline
from tokenware.endpoints import Endpoints, wsgi_path, wsgi_request, wsgi_status

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
else:  # typeshed's WSGI types exist for type checkers only
    WSGIApplication = Any

__all__ = ["TokenwareMiddleware"]


class TokenwareMiddleware(Middleware[WSGIApplication]):
    """Authenticates every request before ``app`` sees it (a plain WSGI callable).

    Options: see :class:`tokenware._middleware.Middleware`, shared with the
    ASGI middleware. ``handshake_payload`` must be a plain function here.

    Raises:
        ConfigurationError: an invalid option.
    """

    async_payload = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = wsgi_path(environ)
        endpoints = self.endpoints
        if endpoints.claims(path):
            served = endpoints.serve_sync(wsgi_request(environ, method, path))
            if served is not None:
                start_response(wsgi_status(served.status), list(served.headers))
                return [served.body]
        tw = self.tokenware
        environ["tokenware.instance"] = tw
        environ["tokenware.trusted_proxies"] = self.policy.trusted_proxies
        header = environ.get("HTTP_AUTHORIZATION")
        authorization = () if header is None else (str(header),)
        query_string = str(environ.get("QUERY_STRING", ""))
        outcome = fast_outcome(
            method, path, authorization, query_string, self.policy, tw._authenticate_local
        )
        if outcome is None:
            forwarded = environ.get("HTTP_X_FORWARDED_FOR")
            view = RequestView(
                method=method,
                path=path,
                authorization=authorization,
                query_string=query_string,
                client=environ.get("REMOTE_ADDR"),
                forwarded_for=() if forwarded is None else (str(forwarded),),
            )
            outcome = run_sync(pipeline(view, self.policy, tw._authenticate_flow), tw.stores.sync)
        environ["tokenware.identity"] = outcome.identity
        environ["tokenware.error"] = outcome.error
        response = outcome.response
        if response is not None:
            start_response(wsgi_status(response.status), list(response.headers))
            return [response.body]
        if (
            endpoints.sets_csrf
            and method in ("GET", "HEAD")
            and (outcome.route is None or outcome.route.kind != "exempt")
        ):
            start_response = _with_csrf(
                start_response, endpoints, method, environ.get("HTTP_COOKIE")
            )
        if not outcome.headers:
            return self.app(environ, start_response)
        return self.app(environ, _adding(start_response, outcome.headers))


def _with_csrf(
    start_response: StartResponse, endpoints: Endpoints, method: str, cookie: str | None
) -> StartResponse:
    def wrapped(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
        | None = None,
    ) -> Any:
        code = int(status[:3]) if status[:3].isdigit() else 0
        extra = endpoints.csrf_cookie_for(method, cookie, code, headers)
        if extra is not None:
            headers = [*headers, extra]
        return start_response(status, headers, exc_info)

    return wrapped


def _adding(start_response: StartResponse, extra: Headers) -> StartResponse:
    def wrapped(
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
        | None = None,
    ) -> Any:
        return start_response(status, merge_headers(headers, extra), exc_info)

    return wrapped
