"""Where a client webhook may be sent: the address policy (README, "Client webhooks").

The checks are ssrfguard's (a maintained SSRF library that resolves a name once and connects to
the address it validated); this module says which policy applies and words its refusals for the
tenant. By default a destination must be a public address: loopback, private (RFC 1918,
unique-local IPv6), link-local (``169.254.169.254`` among them), carrier-grade NAT, multicast,
unspecified and reserved ranges are refused, in IPv4, IPv6 and IPv4-mapped IPv6 and in every
spelling (ssrfguard refuses decimal, octal and short forms; :func:`_legacy_ipv4` the hex and
mixed ones ``inet_aton`` would accept). Only ``http``/``https``, no userinfo, any port.

``GENQUEUE_WEBHOOK_ALLOW_PRIVATE`` lifts the address rule for every destination (development;
``genqueue up`` turns it on); ``GENQUEUE_WEBHOOK_ALLOWED_HOSTS`` lifts it for named hosts
(``hooks.internal``, ``*.corp.example``) and ``GENQUEUE_WEBHOOK_ALLOWED_NETWORKS`` for CIDRs.
The scheme and userinfo rules hold for every destination.
"""

import ipaddress
import socket
from dataclasses import dataclass
from functools import cached_property

from ssrfguard import Policy, SSRFGuardError

from models.settings import Settings

MAX_URL_LENGTH = 2048
"""The longest ``webhook_url`` stored (what browsers and most proxies accept)."""
EVERY_PORT = frozenset(range(1, 65536))
EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class RefusedDestination(ValueError):
    """A webhook URL the policy refuses; ``reason`` is worded for the tenant who sent it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class AddressPolicy:
    """Which webhook destinations may be reached (see the module docstring)."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AddressPolicy":
        return cls(
            allow_private=settings.webhook_allow_private,
            allowed_hosts=settings.webhook_allowed_hosts,
            allowed_networks=settings.webhook_allowed_networks,
        )

    @cached_property
    def public_only(self) -> Policy:
        """The default: public addresses only (plus ``allowed_networks``)."""
        networks = (
            EVERYWHERE
            if self.allow_private
            else tuple(ipaddress.ip_network(n) for n in self.allowed_networks)
        )
        return Policy(allowed_ports=EVERY_PORT, allowed_networks=networks)

    @cached_property
    def any_address(self) -> Policy:
        """For allowed hosts: any address, the URL rules still apply."""
        return Policy(allowed_ports=EVERY_PORT, allowed_networks=EVERYWHERE)

    @cached_property
    def _listed(self) -> Policy | None:
        return Policy(allowed_hosts=frozenset(self.allowed_hosts)) if self.allowed_hosts else None

    def policy_for(self, url: str) -> Policy:
        """The ssrfguard policy a delivery to ``url`` is made under (checked again at connect)."""
        return self.any_address if self._is_listed(url) else self.public_only

    def check(self, url: str) -> None:
        """Refuse what can be refused without DNS: a URL that does not parse, is too long, is
        not http(s), carries userinfo, or names a refused address (in any spelling) or a
        loopback name. Raises :class:`RefusedDestination`."""
        if len(url) > MAX_URL_LENGTH:
            raise RefusedDestination(f"URL is longer than {MAX_URL_LENGTH} characters")
        policy = self.policy_for(url)
        try:
            target = policy.check_url(url)
        except SSRFGuardError as exc:
            raise RefusedDestination(_reason(exc)) from None
        if policy is self.any_address or self.allow_private:
            return
        legacy = _legacy_ipv4(target.host)
        if legacy is not None:
            raise RefusedDestination(
                f"host {target.host_as_written!r} is the IPv4 address {legacy} in a legacy "
                "spelling; write addresses in dotted-quad form"
            )
        host = target.host.rstrip(".")
        loopback_name = host == "localhost" or host.endswith(".localhost")
        if loopback_name and not policy.permits_address("127.0.0.1"):
            raise RefusedDestination(f"host {target.host_as_written!r} is a loopback name")

    def _is_listed(self, url: str) -> bool:
        if self._listed is None:
            return False
        try:
            host = self.any_address.check_url(url).host
            self._listed.check_host(host.rstrip("."))
        except (SSRFGuardError, ValueError):
            return False
        return True


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a host names in a spelling ``inet_aton`` accepts but is not dotted-quad
    (``0x7f000001``, ``0x7f.1``): resolvers turn those into addresses without asking DNS."""
    try:
        packed = socket.inet_aton(host)
    except (OSError, ValueError):
        return None
    address = ipaddress.IPv4Address(packed)
    return None if str(address) == host else address


def _reason(exc: SSRFGuardError) -> str:
    reason = str(getattr(exc, "reason", exc))
    return reason[:300]
