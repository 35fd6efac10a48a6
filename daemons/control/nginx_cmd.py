"""``sleigh nginx config|purge``: the front tier's nginx configuration, and refreshing a
page it keeps.

``config`` renders ``systemd/sleigh-nginx.conf`` (shipped in the package as
``sleigh/systemd/``) for this shop: the app hosts to balance, where nginx
listens and keeps pages, the session cookie shoppers stick by, the static
files' directory and the request size limit from ``[web]``. Every value is
checked before it is written into the file: an address with a space, a ``;``
or a brace would change the configuration's meaning, and is refused naming
its option.

``purge`` asks nginx, from this host, for each page with the
``X-Sleigh-Refresh: 1`` header: the configuration then fetches the page from
an app host again and keeps the new copy in place of the old (open-source
nginx has no purge of its own; this is its way to replace an entry). Use it
after a change that must show before the pages' TTLs run out.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
from collections.abc import Callable, Mapping
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ...errors import SleighError
from ..runtime.sockets import UnixHTTPConnection
from .settings import Settings

__all__ = [
    "NginxError",
    "add_parser",
    "config_options",
    "main_config",
    "render",
    "template_text",
    "values",
]

#: The template's file name in the package's ``systemd`` directory.
TEMPLATE = "sleigh-nginx.conf"
#: The header the template's ``proxy_cache_bypass`` honours from this host.
REFRESH_HEADER = "X-Sleigh-Refresh"
#: Seconds a browser that met the shop over TLS keeps to TLS for it (HSTS): a year.
HSTS_MAX_AGE = 365 * 86400
#: Seconds ``purge`` waits for each page.
PURGE_TIMEOUT = 30.0

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_UNIX = r"unix:/[^\s;{}'\"$\\]+"
_HOST_PORT = r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}"
_UPSTREAM = re.compile(f"{_UNIX}|{_HOST_PORT}")
_LISTEN = re.compile(f"\\d{{1,5}}|{_UNIX}|{_HOST_PORT}")
_SERVER_NAME = re.compile(r"[A-Za-z0-9.*_~^\-]+( [A-Za-z0-9.*_~^\-]+)*")
_SIZE = re.compile(r"\d+[kKmMgG]?")
_DURATION = re.compile(r"\d+(ms|s|m|h|d)?")
_PATH = re.compile(r"/[^\s;{}'\"$\\]*")
_COOKIE = re.compile(r"[A-Za-z0-9_]+")


class NginxError(SleighError):
    """A value that cannot go into the nginx configuration, or a failed purge."""


def template_text() -> str:
    """The template as shipped with the package."""
    return (resources.files("sleigh") / "systemd" / TEMPLATE).read_text(encoding="utf-8")


def render(template: str, values: Mapping[str, str]) -> str:
    """*template* with each ``{{name}}`` replaced by ``values[name]``.

    :raises NginxError: a placeholder without a value, or a value without a placeholder.
    """
    names = set(_PLACEHOLDER.findall(template))
    missing, unused = names - set(values), set(values) - names
    if missing or unused:
        raise NginxError(
            f"template and values differ: missing {sorted(missing)}, unused {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


_MAIN = """# nginx's own configuration for one sleigh front tier run in the foreground (not as a
# system service), everything under -p {run}: written by sleigh, not for editing.
daemon off;
master_process on;
worker_processes {workers};
{user}pid {run}/nginx.pid;
error_log stderr warn;
events {{ worker_connections {connections}; }}
http {{
  log_format sleigh_front '$remote_addr [$time_iso8601] "$request" $status'
                          ' $body_bytes_sent $request_time cache=$upstream_cache_status';
  access_log {access_log};
  sendfile on;
  types {{ text/html html; text/css css; application/javascript js; image/svg+xml svg;
          image/png png; }}
  default_type application/octet-stream;
  client_body_temp_path {run}/body;
  proxy_temp_path {run}/proxy;
  fastcgi_temp_path {run}/fastcgi;
  uwsgi_temp_path {run}/uwsgi;
  scgi_temp_path {run}/scgi;
  include {site};
}}
"""


def main_config(
    site: Path,
    run: Path,
    *,
    workers: int = 1,
    connections: int = 1024,
    access_log: bool = True,
) -> str:
    """nginx's main configuration for a front tier run in the foreground (``daemon off``,
    its pid file, temporary files and access log under *run*, errors to stderr) that
    serves *site* (a file ``sleigh nginx config`` rendered). As root its workers run as
    root too: they reach the app's socket and static files wherever the home is.

    :raises NginxError: a path that cannot be written into the file.
    """
    run_dir = _checked("run directory", str(run), _PATH, "an absolute path without spaces")
    site_file = _checked("site file", str(site), _PATH, "an absolute path without spaces")
    return _MAIN.format(
        run=run_dir,
        site=site_file,
        workers=workers,
        connections=connections,
        user="user root;\n" if os.geteuid() == 0 else "",
        access_log=f"{run_dir}/access.log sleigh_front" if access_log else "off",
    )


def _checked(option: str, value: str, pattern: re.Pattern[str], expected: str) -> str:
    if not pattern.fullmatch(value):
        raise NginxError(f"{option}: {value!r} is not {expected}")
    return value


def default_upstream(settings: Settings) -> str:
    """Where this host's web tier listens, as nginx names an upstream server."""
    web = settings.web
    path = web.socket_path(settings.home)
    if path is not None:
        return f"unix:{path}"
    host = f"[{web.host}]" if ":" in web.host else web.host
    return f"{host}:{web.port}"


def values(args: argparse.Namespace, settings: Settings) -> dict[str, str]:
    """The template's values for *args* (``sleigh nginx config``'s options) and *settings*.

    :raises NginxError: naming the option whose value cannot be written into the file.
    """
    from ...webapp.app import STATIC
    from ...webapp.security.sessions import COOKIE

    upstreams = args.upstream or [default_upstream(settings)]
    servers = [
        _checked("--upstream", u, _UPSTREAM, "HOST:PORT, [IPv6]:PORT or unix:/PATH")
        for u in upstreams
    ]
    cache_dir = _checked("--cache-dir", str(args.cache_dir), _PATH, "an absolute path")
    static = _checked("static files", str(STATIC), _PATH, "an absolute path without spaces")
    listen = _checked("--listen", args.listen, _LISTEN, "PORT, HOST:PORT or unix:/PATH")
    names = _checked("--server-name", args.server_name, _SERVER_NAME, "host names")
    redirect, tls, hsts = "", "", ""
    if args.tls_cert is not None or args.tls_key is not None:
        redirect, tls = _tls(args, listen, names)
        hsts = f'        add_header Strict-Transport-Security "max-age={HSTS_MAX_AGE}" always;\n'
        listen = f"{_checked('--tls-listen', args.tls_listen, _LISTEN, 'PORT or HOST:PORT')} ssl"
    return {
        "servers": "\n".join(f"    server {s} max_fails=3 fail_timeout=10s;" for s in servers),
        "listen": listen,
        "redirect": redirect,
        "tls": tls,
        "hsts": hsts,
        "server_name": names,
        "cache_dir": cache_dir,
        "cache_size": _checked("--cache-size", args.cache_size, _SIZE, "a size like 1g or 512m"),
        "cache_keys": _checked("--cache-keys", args.cache_keys, _SIZE, "a size like 32m"),
        "cache_inactive": _checked("--inactive", args.inactive, _DURATION, "a time like 10m"),
        "session_cookie": _checked("session cookie", COOKIE, _COOKIE, "a cookie name"),
        "static_dir": static,
        "static_max_age": f"{max(0, round(settings.web.static_max_age))}s",
        "max_body": str(settings.web.max_body),
    }


def _tls(args: argparse.Namespace, plain: str, names: str) -> tuple[str, str]:
    """The server (*names*) that sends plain HTTP (on *plain*) to https, and the TLS lines
    of the shop's server, for ``--tls-cert`` and ``--tls-key`` (both absolute, both given)."""
    if args.tls_cert is None or args.tls_key is None:
        raise NginxError("--tls-cert and --tls-key go together")
    cert = _checked("--tls-cert", str(args.tls_cert), _PATH, "an absolute path")
    key = _checked("--tls-key", str(args.tls_key), _PATH, "an absolute path")
    redirect = (
        "server {\n"
        f"    listen {plain};\n"
        f"    server_name {names};\n"
        "    return 301 https://$host$request_uri;\n"
        "}\n\n"
    )
    tls = (
        f"    ssl_certificate {cert};\n"
        f"    ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    ssl_session_cache shared:sleigh_tls:10m;\n"
        "    ssl_session_timeout 1h;\n"
    )
    return redirect, tls


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sleigh nginx ...`` to the top-level subparsers *sub*."""
    nginx = sub.add_parser("nginx", parents=[common], help="the front tier's nginx")
    actions = nginx.add_subparsers(dest="nginx_command", required=True, metavar="ACTION")
    config = actions.add_parser(
        "config", parents=[common], help="print the nginx configuration for this shop"
    )
    _config_arguments(config)
    config.set_defaults(run=cmd_config)
    purge = actions.add_parser(
        "purge", parents=[common], help="replace kept pages with fresh ones from the app"
    )
    purge.add_argument("paths", nargs="+", metavar="PATH", help="a page's path, e.g. /p/42")
    purge.add_argument(
        "--proxy",
        default="http://127.0.0.1",
        help="nginx, as this host reaches it: http://HOST[:PORT] or unix:/PATH"
        " (default: http://127.0.0.1)",
    )
    purge.add_argument(
        "--host", help="the Host shoppers use, part of a page's key (default: --proxy's)"
    )
    purge.set_defaults(run=cmd_purge)


def _config_arguments(config: argparse.ArgumentParser) -> None:
    """``sleigh nginx config``'s options (also what :func:`config_options` starts from)."""
    config.add_argument(
        "--upstream",
        action="append",
        metavar="ADDR",
        help="an app host's web tier, HOST:PORT or unix:/PATH; repeat for each host"
        " (default: this host's, from [web])",
    )
    config.add_argument("--listen", default="80", help="what nginx listens on (default: 80)")
    config.add_argument("--server-name", default="_", help="server_name (default: _, any)")
    config.add_argument(
        "--tls-cert", type=Path, help="serve over TLS with this certificate (PEM, full chain)"
    )
    config.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    config.add_argument(
        "--tls-listen",
        default="443",
        help="with a certificate: where TLS is served (default: 443); --listen then"
        " only redirects to https",
    )
    config.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/var/cache/nginx/sleigh"),
        help="where nginx keeps pages (default: /var/cache/nginx/sleigh)",
    )
    config.add_argument("--cache-size", default="1g", help="most disk for pages (default: 1g)")
    config.add_argument(
        "--cache-keys", default="32m", help="shared memory for the keys, ~8,000 a MB (32m)"
    )
    config.add_argument(
        "--inactive", default="10m", help="a page nobody asked for this long goes (10m)"
    )


def config_options(**given: Any) -> argparse.Namespace:
    """``sleigh nginx config``'s options as its defaults, with *given* (by attribute
    name) in their place: for a caller that renders the file itself (:func:`values`)."""
    parser = argparse.ArgumentParser(add_help=False)
    _config_arguments(parser)
    options = parser.parse_args([])
    unknown = set(given) - set(vars(options))
    if unknown:
        raise TypeError(f"no such option of sleigh nginx config: {sorted(unknown)}")
    for name, value in given.items():
        setattr(options, name, value)
    return options


def cmd_config(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    print(render(template_text(), values(args, settings)), end="")
    if settings.throttle.client_ip_header.lower() != "x-real-ip":
        print(
            "sleigh nginx: note: the app hosts must take the shopper's address from this"
            ' proxy: set [throttle] client_ip_header = "X-Real-IP" there (else every shopper'
            " shares nginx's address, and its per-address limits)",
            file=sys.stderr,
        )
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    for path in args.paths:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise NginxError(f"{path!r} is not a page's path (like /p/42)")
    connect, netloc = _connector(args.proxy)
    failed = 0
    for path in args.paths:
        status, cached = refresh(connect(), args.host or netloc, path)
        print(f"{path}: {status} ({cached or 'no X-Cache-Status: not sleigh-nginx.conf?'})")
        failed += status >= 400 or cached != "BYPASS"
    return 1 if failed else 0


def _connector(proxy: str) -> tuple[Callable[[], http.client.HTTPConnection], str]:
    """Connections to nginx at *proxy* (``http[s]://HOST[:PORT]`` or ``unix:/PATH``), and
    the Host a page is kept under there by default."""
    if proxy.startswith("unix:/"):
        return partial(UnixHTTPConnection, proxy[5:], PURGE_TIMEOUT), "localhost"
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NginxError(f"--proxy: {proxy!r} is not http://HOST[:PORT] or unix:/PATH")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return partial(kind, parts.netloc, timeout=PURGE_TIMEOUT), parts.netloc


def refresh(conn: http.client.HTTPConnection, host: str, path: str) -> tuple[int, str | None]:
    """Ask nginx on *conn* for *path* (as *host*) to be fetched anew; the status and the
    ``X-Cache-Status`` it answered (``BYPASS``: fetched from an app host, kept anew)."""
    try:
        conn.request("GET", path, headers={"Host": host, REFRESH_HEADER: "1"})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Cache-Status")
    finally:
        conn.close()
