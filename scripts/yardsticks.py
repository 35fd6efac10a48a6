"""The yardsticks of ``bench_web.py``, started as ``webshop.py`` starts the shop: the bare
aiohttp + uvloop + Mako pages (``yardstick_pages.py``, on a socket handed over) and nginx
serving a static 20 KB file."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from webshop import BenchError, Processes, clean_env, fetch

from sleigh.daemons.runtime.sockets import bind_tcp

#: The static file nginx serves, bytes.
STATIC_BYTES = 20 * 1024


def start_bare(
    procs: Processes, sock: socket.socket, workers: int, what: list[str]
) -> list[subprocess.Popen[bytes]]:
    """*workers* bare yardstick processes (``yardstick_pages.py``) sharing *sock*;
    *what*: their arguments (the kind of page and its data)."""
    argv = [sys.executable, str(Path(__file__).resolve().with_name("yardstick_pages.py")), *what]
    return procs.start(argv, clean_env(), "bare", sockets=[sock], copies=workers)


_NGINX_CONF = """
daemon off;
master_process on;
worker_processes 2;
user root;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx.error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path %(tmp)s/nginx-body;
  proxy_temp_path %(tmp)s/nginx-proxy;
  fastcgi_temp_path %(tmp)s/nginx-fastcgi;
  uwsgi_temp_path %(tmp)s/nginx-uwsgi;
  scgi_temp_path %(tmp)s/nginx-scgi;
  server { listen 127.0.0.1:%(port)d; root %(tmp)s/static; }
}
"""


def start_nginx(procs: Processes, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nginx (2 workers, master in the foreground) serving a 20 KB file; its port."""
    (tmp / "static").mkdir()
    (tmp / "static" / "page.html").write_bytes((b"x" * 99 + b"\n") * (STATIC_BYTES // 100))
    probe = bind_tcp("127.0.0.1", 0)
    port = probe.getsockname()[1]
    probe.close()
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_CONF % {"tmp": tmp, "port": port})
    argv = [nginx_path(), "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "nginx.error.log")]
    (proc,) = procs.start(argv, clean_env(), "nginx", notify=False)
    wait_http(f"http://127.0.0.1:{port}/page.html", proc)
    return proc, port


def nginx_path() -> str:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin") or "nginx"


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{url} never answered (exit {proc.poll()})")
