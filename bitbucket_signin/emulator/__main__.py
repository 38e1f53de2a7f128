"""Command line: serve the emulator on one port until interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from werkzeug.serving import make_server

from .accounts import AccountsError, load_accounts
from .app import create_app
from .datacenter import install_datacenter
from .datacenter_accounts import load_datacenter
from .faults import ENDPOINTS, Fault, FaultError, parse_fault_spec
from .loopback import ALLOW_FLAG, ListenAddressError, check_listen_address, warn_exposed

EXAMPLE_ACCOUNTS = Path(__file__).with_name("example_accounts.yaml")
ACCOUNTS_HELP = f"""\
accounts file (YAML or JSON; default: the example shipped in the package,
{EXAMPLE_ACCOUNTS}):
  consumers:                      # OAuth consumers, at least one
    - key: my-app                 # the app's BITBUCKET_CLIENT_ID
      secret: my-app-secret       # the app's BITBUCKET_CLIENT_SECRET
      callback_url: "http://127.0.0.1:5000/api/auth/bitbucket"
                                  # the app's callback URL must begin with it (scheme, host, port)
      scopes: [account, email]    # optional (default [account]); also name, rate_limit (1000/h),
                                  # token_scope_field (scope|scopes), workspace_membership (true)
  accounts:                       # Bitbucket accounts, at least one
    - uuid: "{{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}}"
      account_id: 5c65cab48bcc9e016aeece31
      display_name: Jane Doe
      username: jdoe              # optional; also nickname, avatar, account_status, created_on
      emails: [{{email: jane@example.com, is_primary: true, is_confirmed: true}}]   # optional
      workspaces:                 # optional
        - {{slug: acme, uuid: "{{4b1b9b3c-5a2e-4b0c-9a55-7d6b8f0a1c11}}", administrator: true}}
"""
FAULT_HELP = f"""\
fault SPEC syntax: ENDPOINT:key=value[,key=value...]
  ENDPOINT  one of {", ".join(ENDPOINTS)}, or * for all
  status=N        answer HTTP status N (Bitbucket-style error body)
  latency=S       add S seconds (at most 60)
  hang=true|S     stall 30 s (or S s) before answering; ends early when faults are cleared
  times=N         apply to the next N calls only
  content_type=T  content type of body
  body=TEXT       raw response body (must come last; may contain commas)
examples: --fault token:status=503  --fault 'user:latency=0.5,times=2'
          --fault 'token:status=200,body={{"access_tok'
faults can be changed at run time: PUT/DELETE /_emulator/faults/ENDPOINT"""


def _fault(spec: str) -> tuple[str, Fault]:
    try:
        return parse_fault_spec(spec)
    except FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bitbucket_signin.emulator",
        description="Serve a local Bitbucket Cloud emulator (OAuth 2.0 and the 2.0 user API), "
        "and Bitbucket Data Center under its context path when the accounts file has a "
        "'datacenter' section.",
        epilog=f"{ACCOUNTS_HELP}\n{FAULT_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (loopback unless allowed)"
    )
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="allow a non-loopback --host: anyone who reaches the emulator can sign in as "
        "any account (the /_emulator/ control routes stay loopback-only)",
    )
    parser.add_argument("--port", type=int, default=7008, help="port to listen on (0: any)")
    parser.add_argument(
        "--accounts",
        default=str(EXAMPLE_ACCOUNTS),
        help="YAML or JSON accounts file (see below; default: the packaged example)",
    )
    parser.add_argument(
        "--context-path",
        metavar="PATH",
        help="serve Data Center under PATH (default: the accounts file's, else /bitbucket)",
    )
    parser.add_argument(
        "--generate-accounts",
        type=int,
        default=0,
        metavar="N",
        help="add N synthetic accounts user0001... (deterministic ids)",
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault at start (see below); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator; 2 for a bad accounts file, arguments or listen address, 1 if it
    cannot listen."""
    args = build_parser().parse_args(argv)
    try:
        check_listen_address(args.host, allow_non_loopback=args.allow_non_loopback)
        config = load_accounts(args.accounts, generate=max(args.generate_accounts, 0))
        datacenter = load_datacenter(args.accounts, context_path=args.context_path)
        if datacenter is None and args.context_path is not None:
            raise AccountsError(f"--context-path: {args.accounts} has no 'datacenter' section")
    except (ListenAddressError, AccountsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.allow_non_loopback:
        warn_exposed()
    app = create_app(config, dict(args.fault))
    if datacenter is not None:
        install_datacenter(app, datacenter)
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(
        f"Bitbucket emulator on http://{args.host}:{server.server_port} "
        f"({len(config.consumers)} consumers, {len(config.accounts)} accounts)",
        flush=True,
    )
    if datacenter is not None:
        print(
            f"Bitbucket Data Center emulator on http://{args.host}:{server.server_port}"
            f"{datacenter.context_path} ({len(datacenter.consumers)} links, "
            f"{len(datacenter.users)} users)",
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
