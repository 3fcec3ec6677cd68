"""``GET /``: a short page saying what this server is, until the web UI takes ``/`` over.

MLflow prints run links as ``http://SERVER/#/experiments/0/runs/RUN_ID``; the fragment never
reaches the server, so those links arrive here as ``GET /``. The page is one constant: it never
echoes anything of the request, and it is served under the same headers (``default-src
'none'`` CSP, ``nosniff``) as every other answer. It holds no registry data, so it needs no
authentication, like ``/healthz``. The web UI replaces this module.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from modelreg import __version__

router = APIRouter(tags=["home"])

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>modelreg</title>
</head>
<body>
<h1>modelreg {__version__}</h1>
<p>This is a <b>modelreg</b> model registry server. It has no web UI yet: the UI is coming
(see the project's issues). Until then:</p>
<ul>
<li>The REST API is under <code>/api/v1</code>; its documentation is at
<a href="/api/docs">/api/docs</a> and <a href="/openapi.json">/openapi.json</a>.</li>
<li>MLflow clients talk to the MLflow door under <code>/api/2.0/mlflow</code>: set
<code>MLFLOW_TRACKING_URI</code> to this server's address.</li>
<li>A link printed by MLflow (<code>/#/experiments/ID/runs/RUN_ID</code>) opens this page; the
run's data is at <code>GET /api/2.0/mlflow/runs/get?run_id=RUN_ID</code>, and the models
registered from it are shown by <code>modelreg search "run_id = 'RUN_ID'"</code>.</li>
<li>From the command line: <code>modelreg models</code>, <code>modelreg show NAME</code>,
with <code>MODELREG_URI</code> set to this server's address.</li>
</ul>
<p>Health: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>.</p>
</body>
</html>
"""


@router.get("/", include_in_schema=False, response_class=HTMLResponse)
def home() -> HTMLResponse:
    """What this server is and where its API, API docs and MLflow door are."""
    return HTMLResponse(PAGE)
