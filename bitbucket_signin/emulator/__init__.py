"""A local Bitbucket Cloud emulator: OAuth 2.0 consent and token endpoints and the user API.

Run it with ``python -m bitbucket_signin.emulator --accounts FILE`` or, in tests,
``with EmulatorServer(load_accounts(path)) as bitbucket: ...``.
"""

from .accounts import (
    Account,
    AccountsError,
    Consumer,
    Email,
    EmulatorConfig,
    WorkspaceMembership,
    config_from_dict,
    generated_account,
    generated_accounts,
    load_accounts,
)
from .app import create_app
from .faults import ENDPOINTS, Fault, FaultError, FaultRegistry, fault_from_dict, parse_fault_spec
from .loopback import ListenAddressError
from .server import EmulatorServer
from .state import EmulatorState, emulator_state

__all__ = [
    "ENDPOINTS",
    "Account",
    "AccountsError",
    "Consumer",
    "Email",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Fault",
    "FaultError",
    "FaultRegistry",
    "ListenAddressError",
    "WorkspaceMembership",
    "config_from_dict",
    "create_app",
    "emulator_state",
    "fault_from_dict",
    "generated_account",
    "generated_accounts",
    "load_accounts",
    "parse_fault_spec",
]
