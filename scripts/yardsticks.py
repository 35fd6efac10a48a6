"""The yardsticks of ``bench_web.py``, started as ``webshop.py`` starts the shop: the bare
aiohttp + uvloop + Mako pages (``yardstick_pages.py``, on a socket handed over), nginx
serving a static 20 KB file, and nginx as the shop's front tier (``sleigh nginx
config``'s file, in front of the shop's workers)."""

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


#: What the yardsticks' nginx adds to the shop's own main file (``main_config``): a wrk
#: connection is never closed for having made too many requests.
_KEEPALIVE = "keepalive_requests 1000000;\n"


def _start_nginx(
    procs: Processes, tmp: Path, name: str, site: str, probe: str
) -> subprocess.Popen[bytes]:
    """nginx (2 workers, master in the foreground, no access log) serving *site* (its
    ``server`` blocks), with its files under ``tmp/name``, once *probe* (a URL) answers."""
    from sleigh.daemons.control.nginx_cmd import main_config

    run = tmp / name
    run.mkdir()
    site_file = run / "site.conf"
    site_file.write_text(_KEEPALIVE + site)
    conf = run / "nginx.conf"
    conf.write_text(main_config(site_file, run, workers=2, access_log=False))
    argv = [nginx_path(), "-c", str(conf), "-p", str(run), "-e", "stderr"]
    (proc,) = procs.start(argv, clean_env(), name, notify=False)
    wait_http(probe, proc)
    return proc


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (nginx binds its own socket: no hand-over)."""
    probe = bind_tcp("127.0.0.1", 0)
    try:
        return int(probe.getsockname()[1])
    finally:
        probe.close()


def start_nginx(procs: Processes, tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nginx serving a 20 KB file; its port."""
    (tmp / "static").mkdir()
    (tmp / "static" / "page.html").write_bytes((b"x" * 99 + b"\n") * (STATIC_BYTES // 100))
    port = _free_port()
    site = f"server {{ listen 127.0.0.1:{port}; root {tmp}/static; }}"
    return _start_nginx(procs, tmp, "nginx", site, f"http://127.0.0.1:{port}/page.html"), port


def start_front(
    procs: Processes, tmp: Path, home: Path, upstream: str
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx with the file ``sleigh nginx config`` renders for the shop in *home*, in
    front of its web tier at *upstream* (``HOST:PORT``); its port."""
    from sleigh.daemons.control.nginx_cmd import config_options, render, template_text, values
    from sleigh.daemons.control.settings import load_settings

    port = _free_port()
    options = config_options(
        upstream=[upstream],
        listen=f"127.0.0.1:{port}",
        cache_dir=tmp / "front-pages",
        cache_size="256m",
        cache_keys="8m",
    )
    settings = load_settings(home / "sleigh.toml", clean_env(), home=home)
    site = render(template_text(), values(options, settings))
    return _start_nginx(procs, tmp, "front", site, f"http://127.0.0.1:{port}/healthz"), port


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
