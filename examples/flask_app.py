"""Flask: public pages, a protected API and a scope check, in a few lines.

Run:  TOKENWARE_SECRET_KEY="$(tokenware keygen)" flask --app examples/flask_app run
Token: tokenware pat issue --owner alice --role reports:read   (same TOKENWARE_* environment)
"""

from flask import Flask

from tokenware import Tokenware, requires
from tokenware.integrations.flask import current_identity, init_app
from tokenware.wsgi import TokenwareMiddleware

tw = Tokenware.from_env()  # TOKENWARE_SECRET_KEY, TOKENWARE_STORE_URL (sqlite:///tokenware.db)
app = Flask(__name__)
init_app(app, tw)
app.wsgi_app = TokenwareMiddleware(app.wsgi_app, tokenware=tw, protect=["/api/"])


@app.get("/")
def index() -> str:
    return "public"


@app.get("/api/reports")
@requires("reports:read")
def reports() -> dict[str, str]:
    return {"user": current_identity.display_name}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
