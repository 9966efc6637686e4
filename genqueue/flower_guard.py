"""What `genqueue flower` adds to Flower: a real password, and auth on every route.

Flower's basic auth guards its pages and its API, but not ``/metrics`` (which names every
worker and task) nor ``/healthcheck``: their handlers lack the ``authenticated`` check that
the others have (Flower 2.2). :func:`require_auth_everywhere` swaps them for subclasses that
have it, before Flower builds its application from its route table.
"""

from typing import Any

PLACEHOLDER_PASSWORDS = frozenset(
    {
        "",
        "admin",
        "change-me",
        "change_me",
        "changeit",
        "changeme",
        "default",
        "flower",
        "genqueue",
        "letmein",
        "passw0rd",
        "password",
        "password1",
        "secret",
        "test",
        "12345678",
        "123456",
    }
)
"""Passwords from examples and defaults, compared without case: an attacker tries them first."""
MIN_PASSWORD_LENGTH = 8


def password_problem(user: str, password: str) -> str | None:
    """Why ``password`` must not guard Flower, as one line naming the setting; None if fine."""
    if password.strip().lower() in PLACEHOLDER_PASSWORDS or password.lower() == user.lower():
        return (
            "GENQUEUE_FLOWER_PASSWORD is a placeholder (e.g. 'change-me', 'password', or the "
            "user name); choose a real one, e.g. `openssl rand -base64 18`"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"GENQUEUE_FLOWER_PASSWORD must be at least {MIN_PASSWORD_LENGTH} characters"
    return None


def require_auth_everywhere() -> None:
    """Put ``/metrics`` and ``/healthcheck`` behind Flower's auth (idempotent). Raises if
    Flower's route table no longer has them, so an upgrade cannot silently reopen them."""
    from flower import urls
    from flower.views import monitor
    from tornado.web import authenticated

    class Metrics(monitor.Metrics):  # type: ignore[misc]
        @authenticated
        async def get(self) -> None:
            await super().get()

    class Healthcheck(monitor.Healthcheck):  # type: ignore[misc]
        @authenticated
        async def get(self) -> None:
            await super().get()

    guarded: dict[str, Any] = {"/metrics": Metrics, "/healthcheck": Healthcheck}
    found = set()
    for index, route in enumerate(urls.handlers):
        if isinstance(route, tuple) and route[0] in guarded:
            found.add(route[0])
            if not getattr(route[1], "genqueue_guarded", False):
                handler = guarded[route[0]]
                handler.genqueue_guarded = True
                urls.handlers[index] = (route[0], handler, *route[2:])
    if found != set(guarded):
        raise RuntimeError(f"Flower no longer routes {sorted(set(guarded) - found)}")
