"""Keeping the emulator on this machine: loopback-only listening and control routes.

Anyone who reaches the emulator can sign in as any of its accounts, and its ``/_emulator/``
routes grant as anyone, inject faults and show the request log. So it listens on loopback
unless told otherwise in so many words, and the control routes answer loopback peers only.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

ALLOW_FLAG = "--allow-non-loopback"
EXPOSED_BANNER = f"""\
************************************************************************************
*  WARNING: {ALLOW_FLAG} was given: this Bitbucket emulator may be reachable
*  from other machines. ANYONE WHO REACHES IT CAN SIGN IN AS ANY OF ITS ACCOUNTS.
*  It is a test double, never a Bitbucket for production. Its /_emulator/ control
*  routes still answer only to clients on this machine (loopback).
************************************************************************************"""


class ListenAddressError(ValueError):
    """A non-loopback listen address without the explicit permission; one line."""


def is_loopback(address: str | None) -> bool:
    """True for a loopback IP address (127.0.0.0/8, ``::1``, ``::ffff:127.x.y.z``)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def resolves_to_loopback_only(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (``localhost`` is)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(is_loopback(str(address)) for address in addresses)


def check_listen_address(host: str, *, allow_non_loopback: bool) -> None:
    """Refuse ``host`` unless it is loopback-only or ``allow_non_loopback`` says otherwise."""
    if not allow_non_loopback and not resolves_to_loopback_only(host):
        raise ListenAddressError(
            f"refusing to listen on {host!r}: it is not a loopback address, and anyone who "
            f"reaches the emulator can sign in as any account; listen on 127.0.0.1, or pass "
            f"{ALLOW_FLAG} (allow_non_loopback=True in Python) if you really mean it"
        )


def warn_exposed() -> None:
    """Print the loud banner on stderr."""
    print(EXPOSED_BANNER, file=sys.stderr, flush=True)
