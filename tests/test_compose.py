"""docker-compose.yml cannot run here (no Docker engine): check it statically instead.

Every service's command must be a real entry point with options its program accepts, every
GENQUEUE_* variable it sets must be a setting, and the production guarantees (AOF, noeviction,
healthchecks, start order, Flower auth and state) must be in the file.
"""

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from genqueue.cli import app
from models import tasknames
from models.settings import Settings
from worker.cpu_priority import copies_without_polls

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = [name for name, svc in SERVICES.items() if "build" in svc]
PASSTHROUGH = {"worker", "beat", "flower", "simulator"}
COMPOSE_VARIABLES = {"GENQUEUE_BIND"}
"""Read by the compose file itself (interpolated), not by genqueue."""
UPSTREAM_KEY_VARIABLES = ("GENQUEUE_UPSTREAM_KEY", "FAL_KEY")
UPSTREAM_CALLERS = {"worker"}
"""The services that call upstream: the only ones given its key."""


def known_variables() -> set[str]:
    names = {f"GENQUEUE_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(str(c) for c in getattr(alias, "choices", ()) if isinstance(c, str))
    return names


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert command, "every genqueue service names its command"
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def celery_context() -> Any:
    from celery.bin.base import CLIContext

    from worker.celery import app as celery_app

    return CLIContext(app=celery_app, no_color=True, workdir=None, quiet=True)


def check_celery_args(program: str, args: list[str]) -> None:
    """Parse the arguments with Celery's own command (a typo is a NoSuchOption)."""
    if program == "flower":
        from flower.options import options

        for arg in args:
            name = arg.lstrip("-").split("=", 1)[0]
            assert arg.startswith("--"), f"flower has no option {arg!r}"
            assert name in options, f"flower has no option {arg!r}"
        return
    from celery.bin.beat import beat
    from celery.bin.worker import worker

    command = {"worker": worker, "beat": beat}[program]
    command.make_context(program, list(args), obj=celery_context())


@pytest.mark.parametrize("name", APP_SERVICES)
def test_command_is_a_real_entry_point(name: str) -> None:
    argv = command_of(SERVICES[name])
    if argv[0] == "celery":
        assert argv[1:3] == ["-A", "worker"], argv
        check_celery_args(argv[3], argv[4:])
        return
    assert argv[0] == "genqueue", f"{name}: {argv}"
    root: Any = typer.main.get_command(app)
    sub = argv[1]
    assert sub in root.commands, f"{name}: genqueue has no {sub!r} command"
    command = root.commands[sub]
    if sub in ("worker", "beat", "flower"):
        check_celery_args(sub, argv[2:])
    elif sub == "simulator":
        from simulator.cli import build_parser

        build_parser().parse_args(argv[2:])
    else:
        command.make_context(sub, argv[2:])  # raises on an unknown option or a bad value


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_genqueue_variable_is_a_setting(name: str) -> None:
    unknown = set(environment(SERVICES[name])) - known_variables()
    unknown = {v for v in unknown if v.startswith(("GENQUEUE_", "FAL_"))}
    assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_the_example_env_file_names_only_settings() -> None:
    names = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    unknown = {n for n in names if n.startswith("GENQUEUE_")} - known_variables()
    unknown -= COMPOSE_VARIABLES
    assert not unknown, sorted(unknown)
    assert "GENQUEUE_FLOWER_PASSWORD" in names
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for name in COMPOSE_VARIABLES:
        assert f"${{{name}:-" in compose_text, f"the compose file does not read {name}"


def test_the_example_env_file_cannot_start_flower_as_it_is() -> None:
    """`cp .env.example .env` and nothing else must not give Flower a known password."""
    from genqueue.flower_guard import password_problem

    values = dict(
        re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.MULTILINE)
    )
    password = values["GENQUEUE_FLOWER_PASSWORD"]
    assert password == "" or password_problem(values["GENQUEUE_FLOWER_USER"], password)


def test_services_and_profiles() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "webhooks",
        "beat",
        "flower",
        "simulator",
        "rabbitmq",
    }
    optional = {"simulator", "rabbitmq"}
    assert all(SERVICES[name].get("profiles") == [name] for name in optional)
    assert all("profiles" not in svc for name, svc in SERVICES.items() if name not in optional)


def test_redis_keeps_what_it_is_given() -> None:
    argv = command_of(SERVICES["redis"])
    assert argv[0] == "redis-server"
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


@pytest.mark.parametrize("name", [n for n in SERVICES if n != "migrate"])
def test_long_running_services_have_a_healthcheck(name: str) -> None:
    check = SERVICES[name].get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert check.get("test"), f"{name} has no healthcheck"


def test_start_order_waits_for_health_and_migrations() -> None:
    for name in ("api", "worker", "webhooks", "beat"):
        deps = SERVICES[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        # RabbitMQ runs only with its profile: waited for then, and not required otherwise.
        assert deps["rabbitmq"] == {"condition": "service_healthy", "required": False}
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["restart"] == "no"
    for name, svc in SERVICES.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            assert spec["condition"] in ("service_healthy", "service_completed_successfully")


def test_flower_has_auth_and_persistent_state() -> None:
    flower = SERVICES["flower"]
    env = environment(flower)
    assert env.get("GENQUEUE_FLOWER_PASSWORD", "").startswith("${GENQUEUE_FLOWER_PASSWORD:?")
    assert any(v.endswith(":/data") for v in flower["volumes"])
    assert env["GENQUEUE_FLOWER_HOST"] == "0.0.0.0"
    assert command_of(flower)[:2] == ["genqueue", "flower"], "genqueue's checks and auth"


@pytest.mark.parametrize("name", [n for n in SERVICES if SERVICES[n].get("ports")])
def test_published_ports_listen_on_localhost_unless_told(name: str) -> None:
    """Operator surfaces are published on the host's 127.0.0.1 by default; GENQUEUE_BIND
    publishes them elsewhere."""
    for mapping in SERVICES[name]["ports"]:
        assert isinstance(mapping, str), f"{name}: {mapping!r} (the long form is not checked)"
        assert mapping.startswith("${GENQUEUE_BIND:-127.0.0.1}:"), f"{name}: {mapping}"
        assert mapping.count(":") == 3, f"{name}: {mapping} names host address, port, port"


def test_databases_and_worker_metrics_are_not_published() -> None:
    for name in ("postgres", "redis", "rabbitmq", "worker", "webhooks", "beat", "migrate"):
        assert not SERVICES[name].get("ports"), f"{name} is published"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_upstream_key_reaches_only_the_worker(name: str) -> None:
    """.env (env_file) reaches every service; an `environment` entry overrides it, so every
    service that does not call upstream must blank the key, and the worker must not."""
    service = SERVICES[name]
    env = environment(service)
    if "env_file" not in service:
        assert not set(UPSTREAM_KEY_VARIABLES) & set(env), f"{name} is given the key"
        return
    for variable in UPSTREAM_KEY_VARIABLES:
        if name in UPSTREAM_CALLERS:
            assert variable not in env, f"{name} must get {variable} from .env"
        else:
            assert env.get(variable) == "", f"{name} is not kept from {variable}"
    if name != "flower":
        assert env.get("GENQUEUE_FLOWER_PASSWORD") == "", f"{name} gets Flower's password"


def test_the_apis_metrics_are_on_a_port_that_is_not_published() -> None:
    """Issue 19: /metrics was open on the published API port."""
    env = environment(SERVICES["api"])
    port = env["GENQUEUE_METRICS_PORT"]
    published = [mapping.rsplit(":", 1)[1] for mapping in SERVICES["api"]["ports"]]
    assert port not in published
    assert env["GENQUEUE_METRICS_HOST"] == "0.0.0.0"  # the compose network, not the host


@pytest.mark.parametrize("name", ["worker", "webhooks"])
def test_worker_exposes_metrics(name: str) -> None:
    env = environment(SERVICES[name])
    assert env["GENQUEUE_WORKER_METRICS_PORT"] in str(SERVICES[name]["healthcheck"]["test"])
    assert env["GENQUEUE_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_webhook_deliveries_have_a_worker_of_their_own() -> None:
    from worker.celery import app as celery_app

    def queues(name: str) -> set[str]:
        argv = command_of(SERVICES[name])
        return set(argv[argv.index("-Q") + 1].split(","))

    declared = {q.name for q in celery_app.conf.task_queues}
    assert queues("worker") | queues("webhooks") == declared  # every queue is consumed
    assert queues("webhooks") == {tasknames.WEBHOOK_QUEUE, tasknames.MEDIA_QUEUE}
    assert tasknames.MEDIA_QUEUE not in queues("worker")
    assert tasknames.WEBHOOK_QUEUE not in queues("worker")
    assert celery_app.amqp.router.route({}, tasknames.WEBHOOKS)["queue"].name == (
        tasknames.WEBHOOK_QUEUE
    )


def test_the_media_copies_yield_the_cpu_to_the_polls() -> None:
    """In a container, a process's nice is weighed only against its own container's; between
    containers the CPU weight decides (worker/cpu_priority.py). The copies' service gets less than
    the polls' when both want the host's cores."""
    argv = command_of(SERVICES["webhooks"])
    assert copies_without_polls(argv[argv.index("-Q") + 1].split(","))
    shares = {name: SERVICES[name].get("cpu_shares", 1024) for name in ("worker", "webhooks")}
    assert shares["webhooks"] * 4 <= shares["worker"], shares


def test_dockerfile_ships_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject)
    assert include
    packages = [p.strip('" *') for p in include.group(1).split(",")]
    for package in packages:
        assert f"COPY {package}/ {package}/" in dockerfile, f"Dockerfile does not copy {package}"
    assert "pip install -c constraints.txt ." in dockerfile, "every package at its pinned version"
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["genqueue", ', dockerfile, re.MULTILINE)


def test_dockerfile_pins_its_base_image() -> None:
    """An exact version and Debian release (or a digest), never a moving tag like 3.11-slim."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert default, "the base image is a build argument with a pinned default"
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", dockerfile, re.MULTILINE)
    image = default.group(1)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"GENQUEUE_{n.upper()}"
        for n in Settings.model_fields
        if f"GENQUEUE_{n.upper()}" not in readme
    ]
    assert not missing, f"README does not document {missing}"


def test_rabbitmq_is_an_opt_in_broker_that_keeps_its_queues() -> None:
    from models.broker import is_rabbitmq

    base = environment(SERVICES["worker"])
    assert base["GENQUEUE_BROKER_URL"] == "${GENQUEUE_BROKER_URL:-redis://redis:6379/0}"
    # The rate limits need Redis: they must not follow the broker to RabbitMQ.
    assert base["GENQUEUE_RATE_LIMIT_URL"].endswith(":-redis://redis:6379/0}")
    rabbit = SERVICES["rabbitmq"]
    assert rabbit["hostname"] == "rabbitmq"  # the node's name, under which its data is kept
    assert any(v.endswith(":/var/lib/rabbitmq") for v in rabbit["volumes"])
    user = environment(rabbit)["RABBITMQ_DEFAULT_USER"]
    example = re.search(r"^# GENQUEUE_BROKER_URL=(\S+)$", (ROOT / ".env.example").read_text(), re.M)
    assert example, ".env.example shows the RabbitMQ broker URL"
    url = example.group(1)
    assert is_rabbitmq(url)
    assert url.startswith(f"amqp://{user}:")
    assert "@rabbitmq:5672/" in url
