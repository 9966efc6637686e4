"""The console at ``/console``: server-rendered page shells and their committed static files.

The pages carry no tenant data: the browser keeps the API key in ``sessionStorage`` and the
page's own script fetches the ``/v1`` JSON and event streams with ``Authorization: Bearer``, so
the key never travels in a URL or a cookie, and each page shows the signed-in tenant's data
only (the API decides what that is). Nothing is loaded from another origin: the
Content-Security-Policy allows scripts, styles and connections to this origin only.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent.parent / "console"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)

SECURITY_HEADERS = {
    # Media may come from a media CDN (GENQUEUE_MEDIA_PUBLIC_BASE) or upstream's URL while a
    # copy is pending; nothing else leaves this origin.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: https: http:; media-src 'self' https: http:; connect-src 'self'; "
    "form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGES = {
    "list": "Generations",
    "detail": "Generation",
    "new": "New generation",
    "overview": "Overview",
    "sign-in": "Sign in",
}


def _page(request: Request, page: str, **context: str) -> HTMLResponse:
    context = {"page": page, "title": PAGES[page], **context}
    return templates.TemplateResponse(request, f"{page}.html", context, headers=SECURITY_HEADERS)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def generations_page(request: Request) -> HTMLResponse:
    return _page(request, "list")


@router.get("/generations/{generation_id}", response_class=HTMLResponse)
def generation_page(request: Request, generation_id: str) -> HTMLResponse:
    return _page(request, "detail", generation_id=generation_id)


@router.get("/new", response_class=HTMLResponse)
def new_page(request: Request) -> HTMLResponse:
    return _page(request, "new")


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request) -> HTMLResponse:
    return _page(request, "overview")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _page(request, "sign-in")


def install(app: FastAPI) -> None:
    """The pages and ``/console/static`` (before the fal surface's catch-all route)."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
