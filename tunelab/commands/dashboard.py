"""`tunelab dashboard`: a local web page over a storage, live while studies run."""

from __future__ import annotations

import argparse

from tunelab.cli import UsageError, existing_storage
from tunelab.commands.analysis import console, finish_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboard", help="a local, read-only web dashboard of the studies")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (default %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default %(default)s: this machine only; the dashboard has no login)")
    finish_parser(parser, run, json_output=False)


def run(args: argparse.Namespace) -> int:
    from tunelab.dashboard import serve
    from tunelab.dashboard.app import is_loopback
    from tunelab.storage import open_storage
    from tunelab.storage.base import hide_password

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535; got {args.port}")
    url = existing_storage(args.storage)
    # memory storage was refused by existing_storage; a URL it cannot open fails here, before the
    # dashboard is announced
    storage = open_storage(url)
    _check_address(args.host, args.port)
    if not is_loopback(args.host):
        console.print(f"[yellow]warning:[/] serving on {args.host}: anyone who can reach it sees your studies")
    address = page_address(args.host, args.port)
    console.print(f"tunelab dashboard of {hide_password(url)} at {address} (Ctrl-C to stop)")
    serve(storage, host=args.host, port=args.port)
    return 0


def page_address(host: str, port: int) -> str:
    """The address to open in a browser: an IPv6 host goes in brackets (http://::1:8050/ is no URL)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _check_address(host: str, port: int) -> None:
    """Bind the address once before saying the dashboard is there: a port in use or a host that
    does not resolve is a one-line error, not a promise followed by the server's failure."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UsageError(f"--host {host}: cannot resolve it ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise UsageError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port") from None
