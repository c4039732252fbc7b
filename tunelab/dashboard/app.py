"""The dashboard's web app: a few HTML pages, a JSON API behind them, and nothing that writes.

Pages are thin shells; ``dashboard.js`` fetches the JSON API and draws with plotly.js, which is
served from the installed plotly package (no CDN: the dashboard works offline). A study page
polls its API every few seconds, so it follows a study while the tuner runs.
"""

from __future__ import annotations

import html
import ipaddress
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

from tunelab._json import to_jsonable
from tunelab.dashboard.data import TrialNotFound
from tunelab.errors import ConfigError, StudyNotFound, TunelabError
from tunelab.storage import Storage, open_storage

STATIC = Path(__file__).with_name("static")
POLL_SECONDS = 2.0


def _starlette() -> Any:
    try:
        import starlette.applications
        import starlette.middleware
        import starlette.middleware.trustedhost
        import starlette.responses
        import starlette.routing
    except ImportError:
        raise ConfigError("the dashboard needs Starlette and uvicorn: pip install 'tunelab[dashboard]'") from None
    return starlette


def plotly_js() -> Path:
    try:
        import plotly
    except ImportError:
        raise ConfigError("the dashboard needs plotly: pip install 'tunelab[dashboard]'") from None
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _page(title: str, page: str, **data: Any) -> str:
    attrs = " ".join(f'data-{k}="{html.escape(str(v), quote=True)}"' for k, v in data.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - tunelab</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
<script src="/static/plotly.min.js"></script><script src="/static/dashboard.js" defer></script></head>
<body data-page="{page}" data-poll="{POLL_SECONDS}" {attrs}>
<header><a href="/" class="brand">tunelab</a> <a href="/">studies</a> <a href="/compare">compare</a>
<span id="status" class="status"></span></header>
<main id="main"><h1>{html.escape(title)}</h1><div id="content">loading...</div></main>
</body></html>"""


#: Host names a dashboard on a loopback address answers to: a page elsewhere that points its own
#: domain at 127.0.0.1 (DNS rebinding) gets a 400, not the studies (the dashboard has no login).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1")


def create_app(storage: "str | Storage", allowed_hosts: "Sequence[str] | None" = None) -> Any:
    """The ASGI app over ``storage`` (a URL or an open Storage); with ``allowed_hosts``, requests
    naming another host are refused."""
    from tunelab.dashboard.data import DashboardData

    sl = _starlette()
    responses, routing = sl.responses, sl.routing
    data = DashboardData(open_storage(storage))
    js = plotly_js()

    def api(handler: Callable[..., Any]) -> Callable[[Any], Awaitable[Any]]:
        """A JSON endpoint; bad names become 404 with a message instead of a server error."""
        from starlette.concurrency import run_in_threadpool

        async def endpoint(request: Any) -> Any:
            try:
                body = await run_in_threadpool(handler, request)
            except (StudyNotFound, TrialNotFound) as err:
                return responses.JSONResponse({"error": str(err)}, status_code=404)
            except TunelabError as err:
                return responses.JSONResponse({"error": str(err)}, status_code=400)
            return responses.JSONResponse(to_jsonable(body))  # a NaN a diverged run reported: "NaN", as stored

        return endpoint

    def number(request: Any) -> int:
        text = request.path_params["number"]
        # digits only: int() also reads "1_0" as 10, " 3 " and other scripts' digits, so a
        # mistyped address showed another trial than the one it seemed to name
        if not re.fullmatch(r"-?[0-9]+", text):
            raise ConfigError(f"trial number must be an integer; got {text!r}")
        return int(text)

    def compare_args(request: Any) -> tuple[str, str]:
        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not a or not b:
            raise ConfigError("compare needs two studies: /api/compare?a=NAME&b=NAME")
        return a, b

    async def studies_page(request: Any) -> Any:
        return responses.HTMLResponse(_page("studies", "studies"))

    async def study_page(request: Any) -> Any:
        name = request.path_params["name"]
        return responses.HTMLResponse(_page(f"study {name}", "study", study=name))

    async def trial_page(request: Any) -> Any:
        name, trial = request.path_params["name"], request.path_params["number"]
        return responses.HTMLResponse(_page(f"study {name}, trial {trial}", "trial", study=name, trial=trial))

    async def compare_page(request: Any) -> Any:
        return responses.HTMLResponse(_page("compare studies", "compare", a=request.query_params.get("a", ""),
                                            b=request.query_params.get("b", "")))

    routes = [
        routing.Route("/", studies_page),
        routing.Route("/study/{name}", study_page),
        routing.Route("/study/{name}/trial/{number}", trial_page),
        routing.Route("/compare", compare_page),
        routing.Route("/api/studies", api(lambda r: data.studies())),
        routing.Route("/api/study/{name}", api(lambda r: data.study(r.path_params["name"]))),
        routing.Route("/api/study/{name}/importance", api(lambda r: data.importance(r.path_params["name"]))),
        routing.Route("/api/study/{name}/trial/{number}", api(lambda r: data.trial(r.path_params["name"], number(r)))),
        routing.Route("/api/compare", api(lambda r: data.compare(*compare_args(r)))),
        routing.Route("/static/plotly.min.js", lambda r: responses.FileResponse(js, media_type="text/javascript")),
        routing.Route("/static/dashboard.js", lambda r: responses.FileResponse(STATIC / "dashboard.js",
                                                                              media_type="text/javascript")),
        routing.Route("/static/style.css", lambda r: responses.FileResponse(STATIC / "style.css", media_type="text/css")),
    ]
    middleware = [] if allowed_hosts is None else [
        sl.middleware.Middleware(sl.middleware.trustedhost.TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return sl.applications.Starlette(routes=routes, middleware=middleware)


def serve(storage: "str | Storage", host: str = "127.0.0.1", port: int = 8050) -> None:
    """Run the dashboard over ``storage`` (a URL or an open Storage) until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the dashboard needs Starlette and uvicorn: pip install 'tunelab[dashboard]'") from None
    # the address it was started on answers too (127.0.0.2 is loopback as well); an IPv6 Host
    # header does not parse in the host check of older Starlette releases, so ::1 goes without it
    allowed = (*LOOPBACK_HOSTS, host) if is_loopback(host) and ":" not in host else None
    uvicorn.run(create_app(storage, allowed_hosts=allowed), host=host, port=port, log_level="warning")


def is_loopback(host: str) -> bool:
    """Whether an address to bind reaches this machine only (all of 127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
