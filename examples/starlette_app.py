"""Starlette: the middleware protects /api/, ``@requires`` checks a scope.

Run:  TOKENWARE_SECRET_KEY="$(tokenware keygen)" uvicorn examples.starlette_app:app
Token: tokenware pat issue --owner alice --role reports:read   (same TOKENWARE_* environment)
"""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from tokenware import Tokenware, requires
from tokenware.asgi import TokenwareMiddleware

tw = Tokenware.from_env()  # TOKENWARE_SECRET_KEY, TOKENWARE_STORE_URL (sqlite:///tokenware.db)


async def index(request: Request) -> PlainTextResponse:
    return PlainTextResponse("public")


@requires("reports:read")
async def reports(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.user.display_name})


app = Starlette(
    routes=[Route("/", index), Route("/api/reports", reports)],
    middleware=[Middleware(TokenwareMiddleware, tokenware=tw, protect=["/api/"])],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
