"""FastAPI: dependencies check the token and scopes, and document the bearer scheme.

Run:  TOKENWARE_SECRET_KEY="$(tokenware keygen)" uvicorn examples.fastapi_app:app
Token: tokenware pat issue --owner alice --role reports:read   (same TOKENWARE_* environment)
"""

from typing import Annotated

from fastapi import FastAPI, Security

from tokenware import Identity, Tokenware
from tokenware.integrations.fastapi import Authenticated, install

tw = Tokenware.from_env()  # TOKENWARE_SECRET_KEY, TOKENWARE_STORE_URL (sqlite:///tokenware.db)
app = FastAPI()
install(app, tw)
Reader = Annotated[Identity, Security(Authenticated(), scopes=["reports:read"])]


@app.get("/")
async def index() -> str:
    return "public"


@app.get("/api/reports")
async def reports(user: Reader) -> dict[str, str]:
    return {"user": user.subject}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
