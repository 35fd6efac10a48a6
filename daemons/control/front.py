"""The front tier under ``sleigh up``: nginx in front of the web workers, as in production.

With ``sleigh up --front on`` (``auto``: when an ``nginx`` binary is found),
nginx serves the shop's address and the web workers listen on a Unix socket
behind it (``[web] unix_socket``, else ``run/web.sock`` in the home). nginx
runs the file ``sleigh nginx config`` renders for that socket, under
``run/nginx/`` in the home: it keeps public pages for their ``max-age`` in
``run/nginx/pages`` (emptied at each start), serves ``/static/`` itself,
logs every request with its cache status to ``run/nginx/access.log``, and
its errors go to ``sleigh up``'s stderr. The address's socket is bound by
``sleigh up`` and handed to nginx (nginx's own ``NGINX`` variable), as it is
to the workers without a front: port 0 works, and nothing can take the port
in between. The workers then take the shopper's address from nginx's
``X-Real-IP`` (unless ``[throttle] client_ip_header`` names another header).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from ...errors import SleighError
from ..runtime.sockets import bind_unix
from .nginx_cmd import config_options, main_config, render, template_text, values
from .settings import Settings
from .supervisor import Child

log = logging.getLogger("sleigh.up")

__all__ = ["CHOICES", "Front", "FrontError", "choose_nginx", "find_nginx", "probe_http"]

#: ``sleigh up --front``'s values.
CHOICES = ("auto", "on", "off")
#: Where nginx is looked for beside ``PATH`` (Debian installs it in ``/usr/sbin``).
SBIN = "/usr/sbin:/sbin"
#: The header the workers take the shopper's address from behind the front.
REAL_IP = "X-Real-IP"
#: Seconds a readiness probe waits for nginx's answer.
PROBE_TIMEOUT = 2.0


def run_dir(home: Path) -> Path:
    """Everything the front tier writes in *home*: its files, kept pages and access log."""
    return home / "run" / "nginx"


class FrontError(SleighError):
    """The front tier was asked for and cannot run."""


def find_nginx(given: str | None, path: str) -> str | None:
    """The nginx binary: *given* (an error if it is not an executable), else the first on
    *path* or in ``/usr/sbin``; ``None`` if there is none.

    :raises FrontError: *given* is not an executable file.
    """
    if given is not None:
        found = shutil.which(given)
        if found is None:
            raise FrontError(f"--nginx: {given!r} is not an executable file")
        return found
    return shutil.which("nginx", path=f"{path}:{SBIN}" if path else SBIN)


def choose_nginx(
    front: str, nginx: str | None, environ: Mapping[str, str], out: TextIO
) -> str | None:
    """The nginx binary to run in front of the workers (``None``: no front tier), for
    ``--front`` *front* (``auto``, ``on``, ``off``) and ``--nginx`` *nginx*.

    :raises FrontError: ``on`` (or ``--nginx``) and no nginx to run.
    """
    if front == "off":
        return None
    found = find_nginx(nginx, environ.get("PATH", ""))
    if found is None and front == "on":
        raise FrontError(
            "--front on: no nginx on PATH or in /usr/sbin (apt-get install nginx-light)"
        )
    if found is None:
        print(
            "front: no nginx found, so shoppers reach the web workers directly"
            " (apt-get install nginx-light for the front tier)",
            file=out,
            flush=True,
        )
    return found


async def probe_http(host: str, port: int) -> bool:
    """Whether an HTTP server at *host*:*port* answers a ``HEAD /healthz`` now."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT)
        return line.startswith(b"HTTP/1.")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


class Front:
    """nginx's files for *settings*' home, and the child that runs it.

    :param nginx: the nginx binary.
    :param listening: the shop's address, bound (TCP), handed to nginx.
    """

    def __init__(self, settings: Settings, nginx: str, listening: socket.socket) -> None:
        self.settings = settings
        self.nginx = nginx
        self.listening = listening
        self.run = run_dir(settings.home)
        configured = settings.web.socket_path(settings.home)
        self.app_path = configured or settings.home / "run" / "web.sock"

    @property
    def app_address(self) -> str:
        """Where the workers listen, as nginx names it."""
        return f"unix:{self.app_path}"

    def bind_app(self) -> socket.socket:
        """The workers' socket (behind nginx only: it is the run directory's)."""
        return bind_unix(self.app_path, mode=0o666)

    def write_files(self) -> Path:
        """nginx's site and main files under ``run/nginx``, with no page kept from an
        earlier run (its data may have changed since); the main file.

        :raises NginxError: a value the files cannot hold.
        """
        host, port = self.listening.getsockname()[:2]
        shutil.rmtree(self.run / "pages", ignore_errors=True)
        self.run.mkdir(parents=True, exist_ok=True)
        options = config_options(
            upstream=[self.app_address],
            listen=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            cache_dir=self.run / "pages",
            cache_size="256m",
            cache_keys="8m",
        )
        site = self.run / "sleigh.conf"
        site.write_text(render(template_text(), values(options, self.settings)))
        main = self.run / "nginx.conf"
        main.write_text(main_config(site, self.run))
        return main

    def child(self) -> Child:
        """nginx as ``sleigh up`` runs it: ready when it answers on the shop's address,
        stopped gracefully (``SIGQUIT``: requests in progress finish)."""
        main = self.write_files()
        host, port = self.listening.getsockname()[:2]

        async def serving() -> bool:
            return await probe_http(host, port)

        return Child(
            "nginx",
            [self.nginx, "-c", str(main), "-p", str(self.run), "-e", "stderr"],
            [self.listening],
            env={"NGINX": "3;"},  # nginx's own hand-over: the first socket is fd 3
            probe=serving,
            stop_signal=signal.SIGQUIT,
        )

    def worker_env(self) -> dict[str, str]:
        """What the workers' environment needs behind the front."""
        header = self.settings.throttle.client_ip_header
        if not header:
            return {"SLEIGH_THROTTLE_CLIENT_IP_HEADER": REAL_IP}
        if header.lower() != REAL_IP.lower():
            log.warning(
                "[throttle] client_ip_header is %s, but the front sends the shopper's"
                " address in %s: every shopper may share nginx's address",
                header,
                REAL_IP,
            )
        return {}
