"""Which peers may tell genqueue its public scheme and host (``X-Forwarded-Proto``/``-Host``).

Only the reverse proxies named in ``GENQUEUE_TRUSTED_PROXIES`` are believed: from anyone else
those headers would let a client rewrite the status, result and cancel URLs genqueue hands out.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...] | None:
    """``"10.0.0.0/8, 127.0.0.1"`` as networks; ``"*"`` (any peer) as ``None``. Raises
    ``ValueError`` naming an entry that is neither an address nor a network."""
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if "*" in entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] | None = ()
    """``None``: every peer is trusted (``*``)."""

    @classmethod
    def parse(cls, spec: str) -> "TrustedProxies":
        return cls(parse_networks(spec))

    def trusts(self, peer: str | None) -> bool:
        if self.networks is None:
            return True
        if not peer or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return _within(address, self.networks)


def _within(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]
) -> bool:
    return any(address.version == net.version and address in net for net in nets)
