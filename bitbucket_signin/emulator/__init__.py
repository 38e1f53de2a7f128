"""A local Bitbucket Cloud emulator: OAuth 2.0 consent and token endpoints and the user API;
and Bitbucket Data Center under its context path (``datacenter``).

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
from .datacenter import DataCenterState, datacenter_state, install_datacenter
from .datacenter_accounts import (
    DataCenterConfig,
    ServerConsumer,
    ServerUser,
    datacenter_from_dict,
    load_datacenter,
)
from .faults import ENDPOINTS, Fault, FaultError, FaultRegistry, fault_from_dict, parse_fault_spec
from .loopback import ListenAddressError
from .server import EmulatorServer
from .state import EmulatorState, emulator_state

__all__ = [
    "ENDPOINTS",
    "Account",
    "AccountsError",
    "Consumer",
    "DataCenterConfig",
    "DataCenterState",
    "Email",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "Fault",
    "FaultError",
    "FaultRegistry",
    "ListenAddressError",
    "ServerConsumer",
    "ServerUser",
    "WorkspaceMembership",
    "config_from_dict",
    "create_app",
    "datacenter_from_dict",
    "datacenter_state",
    "emulator_state",
    "fault_from_dict",
    "generated_account",
    "generated_accounts",
    "install_datacenter",
    "load_accounts",
    "load_datacenter",
    "parse_fault_spec",
]
