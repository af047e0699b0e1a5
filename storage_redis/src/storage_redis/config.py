"""``RedisConfig``: every option of the Redis backend, checked when it is built (no I/O).

One place per option: the URL names the server (scheme, host, port or socket, user,
password, db); everything else is a field, so a URL query may carry only ``db`` and
``protocol``. redis-py's own retry switches in a URL (``retry_on_timeout``,
``retry_on_error``) are accepted for compatibility and neutralized: the backend's one
retry policy is configured with ``max_retries`` and ``retry_delay_ms``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.backoff import NoBackoff
from redis.connection import parse_url as _untyped_parse_url
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry

from storage_core.backend import ConfigError, Secret, check_fields, redact_url, seal_secret_fields, secret
from storage_redis.addresses import CLUSTER_PORT, SENTINEL_PORT, TopologyURL, parse_addresses, parse_topology_url
from storage_redis.tls import HandshakeRecord, TLSConnection

__all__ = ["SCHEMES", "RedisConfig", "section_options"]

SENTINEL = "redis+sentinel"
CLUSTER = "redis+cluster"
STANDALONE_SCHEMES = ("redis", "rediss", "unix")
TOPOLOGY_SCHEMES = (SENTINEL, CLUSTER)
SCHEMES = (*STANDALONE_SCHEMES, *TOPOLOGY_SCHEMES)
SECTION = "storage.redis"
# Sentinel and Cluster: the default retry budget rides through a failover (a replica is
# promoted a few seconds after its primary stopped answering): 30 retries with delays
# capped at 1 s wait 14 to 28 s in all, where a single server's 3 retries wait < 1 s.
FAILOVER_RETRIES = 30
FAILOVER_MAX_DELAY_MS = 1000.0

# Accepted in a URL query; everything else has its own field.
_QUERY_OPTIONS = frozenset({"db", "protocol"})
# redis-py's own retry switches: accepted, then dropped so that ours is the only policy.
_NEUTRALIZED = frozenset({"retry_on_timeout", "retry_on_error"})
_CERT_REQS = ("required", "optional", "none")
_SSL_FIELDS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_password")
_SSL_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
# urllib and redis-py quote the part of the URL they stumbled on, which can be part of a
# password: their text is never shown. This is what usually went wrong instead.
_PERCENT_ENCODE = (
    "special characters in a password (or user name) must be percent-encoded: / as %2F, ? as %3F, # as %23, % as %25"
)


def parse_url(url: str) -> dict[str, Any]:
    """redis-py's reading of a Redis URL into connection keyword arguments.

    The neutralized retry switches never reach redis-py: their values are dropped anyway,
    and redis-py 8.2 started refusing a ``retry_on_error`` that names no exception class.
    """
    base, _, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    items = query.split("&")
    kept = [item for item in items if item.partition("=")[0] not in _NEUTRALIZED]
    if len(kept) < len(items):  # join, not an f-string: the URL may be a Secret, shown masked
        url = "".join([base, "?" if kept else "", "&".join(kept), hash_mark, fragment])
    options: dict[str, Any] = _untyped_parse_url(url)  # type: ignore[no-untyped-call]
    return options


def _plain(secret: str) -> str:
    """The text of a (possibly sealed) secret, for the client library that authenticates with it."""
    return Secret(secret).reveal()


def _fail(name: str, message: str) -> ConfigError:
    return ConfigError(message, field=f"{SECTION}.{name}")


def section_options(options: Any) -> Any:
    """*options* with ``sentinels`` and ``cluster_nodes`` given as YAML lists joined by commas."""
    if not isinstance(options, Mapping):
        return options  # parse_options says what is wrong with it
    joined = dict(options)
    for name in ("sentinels", "cluster_nodes"):
        value = joined.get(name)
        if isinstance(value, list) and all(type(item) is str for item in value):
            joined[name] = ",".join(value)
    return joined


class _DefaultInt(int):
    """A field's default, told apart from the same number given: Sentinel and Cluster pick their own."""


class _DefaultFloat(float):
    """See :class:`_DefaultInt`."""


@dataclass(frozen=True, slots=True, repr=False)
class RedisConfig:
    """Options of the Redis backend; ``storage.redis`` in ``agent.yaml``.

    Raises:
        ConfigError: naming the field, for a value the backend could not use.
    """

    url: str = secret(default="")
    """``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path.sock``,
    ``redis+sentinel://[user:password@]host:port[,host:port]/service_name`` or
    ``redis+cluster://[user:password@]host:port[,host:port]``; or none, with ``sentinels``
    or ``cluster_nodes`` instead."""
    username: str | None = None
    """ACL user; overrides the URL's."""
    password: str | None = secret(default=None)
    """Overrides the URL's; better given as ``${REDIS_PASSWORD}`` from the environment."""
    db: int | None = None
    """Database number; overrides the URL's (default 0)."""
    max_retries: int = _DefaultInt(3)
    """Retries after the first attempt, for errors a retry can cure (Sentinel, Cluster: 30 by default)."""
    retry_delay_ms: float = 100
    """Backoff before the first retry; doubles each retry, with jitter."""
    retry_max_delay_ms: float = _DefaultFloat(10_000)
    """Cap on a single backoff delay (Sentinel, Cluster: 1000 by default)."""
    max_connections: int = 50
    """Size of the blocking connection pool."""
    pool_timeout: float = 5.0
    """Seconds a caller waits for a free pooled connection before ``PoolExhausted``."""
    socket_timeout: float | None = 5.0
    """Seconds to wait for a reply (None: forever)."""
    socket_connect_timeout: float | None = 5.0
    """Seconds to wait for a connection (None: forever)."""
    health_check_interval: float = 30.0
    """A connection idle this many seconds is PINGed before reuse (0: never)."""
    client_name: str | None = None
    """Shown by ``CLIENT LIST`` on the server."""
    ssl_ca_certs: str | None = None
    """CA bundle that signed the server's certificate (``rediss://`` only)."""
    ssl_certfile: str | None = None
    """Client certificate, for servers that require one (``tls-auth-clients``)."""
    ssl_keyfile: str | None = None
    """Private key of the client certificate."""
    ssl_password: str | None = secret(default=None)
    """Passphrase of ``ssl_keyfile``."""
    ssl_cert_reqs: str = "required"
    """Verify the server's certificate: required | optional | none."""
    ssl_check_hostname: bool = True
    """Check that the certificate names the host in the URL."""
    wait_replicas: int = 0
    """STRONG writes wait (``WAIT``) until this many replicas acknowledged them."""
    wait_timeout_ms: int = 1000
    """... for at most this long; fewer acknowledgements raise ``ConsistencyError``."""
    wait_aof: bool = False
    """STRONG writes also wait for the primary's AOF fsync (``WAITAOF``, Redis >= 7.2)."""
    scan_count: int = 1000
    """``COUNT`` hint of each ``SCAN`` page when listing keys."""
    # -- Sentinel and Cluster ---------------------------------------------------------------
    sentinels: str | None = None
    """Sentinel addresses, ``host:port`` separated by commas (or a YAML list), instead of a url."""
    service_name: str | None = None
    """The name the sentinels know the primary by; overrides the url's path."""
    sentinel_username: str | None = None
    """ACL user on the sentinels (the data nodes' comes from the url or ``username``)."""
    sentinel_password: str | None = secret(default=None)
    """Password of the sentinels, kept apart from the data nodes' ``password``."""
    cluster_nodes: str | None = None
    """Some nodes of a Redis Cluster, ``host:port`` separated by commas (or a YAML list), instead of a url."""
    read_from_replicas: bool = False
    """Sentinel, Cluster: a store whose consistency is eventual reads from a healthy replica."""
    namespace_hash_tag: bool = False
    """Store keys as ``{namespace}:key``: one namespace's keys share a Cluster slot, so
    multi-key operations on them work."""

    def __post_init__(self) -> None:
        self._settle_defaults()
        check_fields(self, section=SECTION)
        seal_secret_fields(self)  # built directly with plain strs, it masks them all the same
        self._check_url()
        self._check_topology_fields()
        self._check_numbers()
        self._check_tls()

    def _check_url(self) -> None:
        if not self.url:
            return  # sentinels or cluster_nodes name the servers (see _check_topology_fields)
        if "://" not in self.url:
            raise _fail("url", "expected a URL such as redis://host:6379/0, rediss://host:6380/0 or unix:///path.sock")
        scheme, rest = self.url.split("://", 1)
        scheme = scheme.lower()
        if scheme not in SCHEMES:
            raise _fail(
                "url",
                "expected a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL, "
                f"got scheme {scheme!r}",
            )
        if scheme in TOPOLOGY_SCHEMES:
            self._check_topology_url(scheme)
            return
        # An '@' after the host part means the user info held a character that ended it
        # early: whatever urllib makes of the rest, part of the password would show.
        after_host = rest[len(rest.split("/", 1)[0]) :] if scheme != "unix" else ""
        if "@" in after_host or "@" in rest.partition("?")[2] or "@" in rest.partition("#")[2]:
            raise _fail("url", f"the URL has an '@' after its host part; {_PERCENT_ENCODE}")
        try:
            parts = urlsplit(self.url)
        except ValueError:
            raise _fail(
                "url", f"not a valid Redis URL (an IPv6 host goes in brackets: [::1]); {_PERCENT_ENCODE}"
            ) from None
        try:
            _ = parts.port
        except ValueError:
            raise _fail(
                "url", f"not a valid Redis URL: its port is not a number up to 65535; {_PERCENT_ENCODE}"
            ) from None
        try:
            parse_url(self.url)
        except ValueError:
            raise _fail("url", "not a valid Redis URL: db and protocol in its query must be numbers") from None
        self._check_url_query(parts.query)
        if scheme == "unix":
            if not parts.path:
                raise _fail("url", "a unix:// URL needs the socket's path, e.g. unix:///run/redis/redis.sock")
            return
        if not parts.hostname:
            hint = f"; {_PERCENT_ENCODE}" if "@" in self.url else ""
            raise _fail("url", f"the URL names no host, e.g. redis://127.0.0.1:6379/0{hint}")
        if parts.path.strip("/") and not parts.path.strip("/").isdigit():
            raise _fail("url", "the URL's path must be a database number such as /0")

    def _check_url_query(self, query: str) -> None:
        for name in parse_qs(query):
            if name in _QUERY_OPTIONS or name in _NEUTRALIZED:
                continue
            if name in _FIELD_NAMES:
                hint = f"set {SECTION}.{name} instead"
            elif name == "timeout":
                hint = f"set {SECTION}.pool_timeout instead"
            else:
                hint = "the query may carry only db and protocol; every other option is a field of its own"
            raise _fail("url", f"URL query option {name!r} is not accepted: {hint}")

    def _check_numbers(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("db", self.db is None or self.db >= 0, "a database number, 0 or more"),
            ("max_retries", 0 <= self.max_retries <= 100, "0 to 100 retries"),
            ("retry_delay_ms", self.retry_delay_ms >= 0, "0 or more milliseconds"),
            ("retry_max_delay_ms", self.retry_max_delay_ms >= self.retry_delay_ms, "at least retry_delay_ms"),
            ("max_connections", self.max_connections >= 1, "1 or more connections"),
            ("pool_timeout", self.pool_timeout > 0, "more than 0 seconds"),
            ("socket_timeout", self.socket_timeout is None or self.socket_timeout > 0, "more than 0 seconds, or null"),
            (
                "socket_connect_timeout",
                self.socket_connect_timeout is None or self.socket_connect_timeout > 0,
                "more than 0 seconds, or null",
            ),
            ("health_check_interval", self.health_check_interval >= 0, "0 (off) or more seconds"),
            ("wait_replicas", self.wait_replicas >= 0, "0 or more replicas"),
            # WAIT with a timeout of 0 would block forever.
            ("wait_timeout_ms", self.wait_timeout_ms >= 1, "1 or more milliseconds"),
            ("scan_count", self.scan_count >= 1, "1 or more"),
            ("ssl_cert_reqs", self.ssl_cert_reqs in _CERT_REQS, " | ".join(_CERT_REQS)),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise _fail(name, f"expected {expected}, got {getattr(self, name)!r}")
        waits = self.wait_replicas > 0 or self.wait_aof
        if waits and self.socket_timeout is not None and self.socket_timeout * 1000 <= self.wait_timeout_ms:
            raise _fail(
                "socket_timeout",
                f"must exceed wait_timeout_ms ({self.wait_timeout_ms} ms), or a WAIT that runs its full "
                f"time would time out the connection; got {self.socket_timeout} s",
            )

    def _check_tls(self) -> None:
        if self.scheme == "rediss":
            # A missing file would otherwise surface at the first connection, as a server
            # that "could not be reached".
            for name in _SSL_FILES:
                path = getattr(self, name)
                if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
                    raise _fail(name, f"no readable file at {path!r}; expected the path of a PEM file")
            return
        for name in (*_SSL_FIELDS, "ssl_cert_reqs", "ssl_check_hostname"):
            field = next(f for f in dataclasses.fields(self) if f.name == name)
            if getattr(self, name) != field.default:
                raise _fail(name, "TLS options need a rediss:// URL")

    # -- Sentinel and Cluster ---------------------------------------------------------------

    def _settle_defaults(self) -> None:
        """Replace each marked default with the deployment's own, as a plain number.

        Frozen: settled here, once, before any check reads them.
        """
        topology = self.scheme in TOPOLOGY_SCHEMES
        if type(self.max_retries) is _DefaultInt:
            object.__setattr__(self, "max_retries", FAILOVER_RETRIES if topology else int(self.max_retries))
        if type(self.retry_max_delay_ms) is _DefaultFloat:
            cap = float(self.retry_max_delay_ms)
            if topology:
                delay = (
                    self.retry_delay_ms if type(self.retry_delay_ms) in (int, float) else 0
                )  # else check_fields says
                cap = max(FAILOVER_MAX_DELAY_MS, float(delay))
            object.__setattr__(self, "retry_max_delay_ms", cap)

    def _check_topology_fields(self) -> None:
        given = [name for name in ("sentinels", "cluster_nodes") if getattr(self, name) is not None]
        if len(given) > 1:
            raise _fail("cluster_nodes", "give either sentinels or cluster_nodes, not both")
        if given and self.url:
            raise _fail(given[0], f"give either url or {given[0]}, not both")
        if not self.url and not given:
            raise ConfigError(
                "missing required field(s): url (or sentinels and service_name, or cluster_nodes)", field=SECTION
            )
        for name in given:
            try:
                parse_addresses(getattr(self, name), SENTINEL_PORT if name == "sentinels" else CLUSTER_PORT)
            except ValueError as exc:
                raise _fail(name, f"expected host:port items separated by commas: {exc}") from None
        scheme = self.scheme
        only = {
            "service_name": SENTINEL,
            "sentinel_username": SENTINEL,
            "sentinel_password": SENTINEL,
        }
        for name, needs in only.items():
            if getattr(self, name) is not None and scheme != needs:
                raise _fail(name, "belongs to a Sentinel deployment: a redis+sentinel:// url, or sentinels")
        if self.read_from_replicas and scheme not in TOPOLOGY_SCHEMES:
            raise _fail(
                "read_from_replicas",
                "needs a Sentinel or Cluster deployment, which knows its replicas (redis+sentinel://, redis+cluster://)",
            )
        if scheme == SENTINEL and not self.service:
            raise _fail("service_name", "a Sentinel deployment needs the service name: the url's path, or service_name")
        if scheme == CLUSTER and self.db not in (None, 0):
            raise _fail("db", "a Redis Cluster has only database 0")

    def _check_topology_url(self, scheme: str) -> None:
        try:
            parts = self._topology_url()
        except ValueError as exc:
            raise _fail("url", f"not a valid {scheme}:// URL: {exc}; {_PERCENT_ENCODE}") from None
        self._check_url_query("&".join(f"{name}=1" for name in parts.query))
        for name in ("db", "protocol"):
            values = parts.query.get(name, [])
            if any(not v.isdigit() for v in values):
                raise _fail("url", f"not a valid Redis URL: {name} in its query must be a number")
        if scheme == CLUSTER:
            if parts.path.strip("/") not in ("", "0") or parts.query.get("db", ["0"]) != ["0"]:
                raise _fail("url", "a Redis Cluster has only database 0: give no path (or /0) and no db")
        elif "/" in parts.path.strip("/"):
            raise _fail("url", "the path of a redis+sentinel:// URL is the service name, e.g. /mymaster")

    def _topology_url(self) -> TopologyURL:
        if self.url:
            default_port = SENTINEL_PORT if self.scheme == SENTINEL else CLUSTER_PORT
            return parse_topology_url(self.url, default_port)
        if self.sentinels is not None:
            return TopologyURL(SENTINEL, parse_addresses(self.sentinels, SENTINEL_PORT), None, None, "", {})
        assert self.cluster_nodes is not None
        return TopologyURL(CLUSTER, parse_addresses(self.cluster_nodes, CLUSTER_PORT), None, None, "", {})

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Sentinel or Cluster: the sentinels, or the cluster nodes to start from."""
        return self._topology_url().addresses

    @property
    def service(self) -> str:
        """Sentinel: the name of the monitored primary ('' for the other deployments)."""
        if self.service_name is not None:
            return self.service_name
        return self._topology_url().path.strip("/") if self.scheme == SENTINEL else ""

    def node_kwargs(self) -> dict[str, Any]:
        """Sentinel, Cluster: keyword arguments for the data nodes' connection pools, retries off.

        No host or port: Sentinel names the primary, the cluster its nodes.
        """
        parts = self._topology_url()
        kwargs: dict[str, Any] = {"username": parts.username, "password": parts.password}
        for name in ("db", "protocol"):
            if name in parts.query:
                kwargs[name] = int(parts.query[name][-1])
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        if kwargs["password"] is not None:
            kwargs["password"] = _plain(kwargs["password"])
        if self.db is not None:
            kwargs["db"] = self.db
        kwargs.update(
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_connect_timeout,
            socket_keepalive=True,
            health_check_interval=self.health_check_interval,
            client_name=self.client_name,
            retry=Retry(NoBackoff(), 0),
        )
        if self.scheme == CLUSTER:
            kwargs.pop("db", None)
        return kwargs

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Sentinel: keyword arguments for the clients that ask the sentinels, retries off too."""
        return {
            "username": self.sentinel_username,
            "password": None if self.sentinel_password is None else _plain(self.sentinel_password),
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "client_name": self.client_name,
            "retry": Retry(NoBackoff(), 0),
        }

    @property
    def scheme(self) -> str:
        """``redis``, ``rediss``, ``unix``, ``redis+sentinel`` or ``redis+cluster``."""
        if not self.url:
            return SENTINEL if self.sentinels is not None else CLUSTER
        return self.url.split("://", 1)[0].lower()

    @property
    def redacted_url(self) -> str:
        """The URL with any password replaced by ``***``."""
        return redact_url(self.url)

    def secrets(self) -> tuple[str, ...]:
        """Every secret this config holds, to scrub from any text we emit."""
        found = [self.password, self.ssl_password, self.sentinel_password]
        if self.scheme in TOPOLOGY_SCHEMES:
            found.append(self._topology_url().password)
        else:
            found += [urlsplit(self.url).password, parse_url(self.url).get("password")]
        return tuple(Secret(s) for s in found if s)

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's ``BlockingConnectionPool``, retries switched off."""
        kwargs: dict[str, Any] = parse_url(self.url)  # without the neutralized switches
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = Secret(self.password).reveal()
        if self.db is not None:
            kwargs["db"] = self.db
        kwargs.update(
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_connect_timeout,
            health_check_interval=self.health_check_interval,
            client_name=self.client_name,
            # One explicit zero-retry policy: the pool's connections never retry on their own.
            retry=Retry(NoBackoff(), 0),
            # Off: on servers without CLIENT MAINT_NOTIFICATIONS (all of Redis < 8) redis-py's
            # "auto" sends it on every new connection and logs the refusal into --debug output.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        if self.scheme != "unix":
            kwargs["socket_keepalive"] = True
        if self.scheme == "rediss":
            kwargs.update(
                connection_class=TLSConnection,  # says when the server did not answer the handshake
                handshakes=HandshakeRecord(),  # one per pool: the connections of one server share it
                ssl_ca_certs=self.ssl_ca_certs,
                ssl_certfile=self.ssl_certfile,
                ssl_keyfile=self.ssl_keyfile,
                ssl_password=None if self.ssl_password is None else Secret(self.ssl_password).reveal(),
                ssl_cert_reqs=self.ssl_cert_reqs,
                ssl_check_hostname=self.ssl_check_hostname,
            )
        return kwargs

    def __repr__(self) -> str:
        shown = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "url":
                shown.append(f"url={self.redacted_url!r}")
            elif field.metadata.get("secret"):
                if value:
                    shown.append(f"{field.name}='***'")
            elif value != field.default:
                shown.append(f"{field.name}={value!r}")
        return f"RedisConfig({', '.join(shown)})"


_FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(RedisConfig))
