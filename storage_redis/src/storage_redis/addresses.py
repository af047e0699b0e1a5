"""Reading the URLs of a deployment with several entry points: Sentinel and Cluster.

``redis+sentinel://[user:password@]host:port[,host:port]/service_name[?db=N]`` names the
sentinels and the service they monitor; ``redis+cluster://[user:password@]host:port[,...]``
some nodes of a cluster (one is enough, the client discovers the rest). The user info is
the data nodes' credentials, as in ``redis://``; the sentinels' own come from separate
fields. redis-py reads neither form, and urllib cannot read a list of hosts, hence this.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

__all__ = ["SENTINEL_PORT", "TopologyURL", "parse_addresses", "parse_topology_url"]

SENTINEL_PORT = 26379
CLUSTER_PORT = 6379


@dataclass(frozen=True, slots=True, repr=False)
class TopologyURL:
    """The parts of a ``redis+sentinel://`` or ``redis+cluster://`` URL."""

    scheme: str
    addresses: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    path: str
    query: dict[str, list[str]]


def parse_addresses(text: str, default_port: int) -> tuple[tuple[str, int], ...]:
    """``host[:port]`` items separated by commas; an IPv6 host goes in brackets.

    Raises:
        ValueError: saying which item is not an address.
    """
    found = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError("an empty address between commas")
        if item.startswith("["):
            host, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise ValueError(f"{item!r} is not an address: an IPv6 host goes in brackets, as [::1]:26379")
            port_text = rest[1:]
        elif item.count(":") > 1:
            raise ValueError(f"{item!r} is not an address: an IPv6 host goes in brackets, as [::1]:26379")
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise ValueError(f"{item!r} names no host")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) <= 65535):
            raise ValueError(f"{item!r} is not an address: its port is not a number from 1 to 65535")
        found.append((host, int(port_text) if port_text else default_port))
    return tuple(found)


def parse_topology_url(url: str, default_port: int) -> TopologyURL:
    """Split *url* into its parts, percent-decoding the credentials.

    Raises:
        ValueError: saying what is wrong, never quoting the user info.
    """
    scheme, _, rest = url.partition("://")
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hosts:
        raise ValueError("the URL names no host:port")
    return TopologyURL(
        scheme=scheme.lower(),
        addresses=parse_addresses(hosts, default_port),
        username=username,
        password=password,
        path=unquote(path) if slash else "",
        query=parse_qs(query),
    )
