"""The CERX load: WebSocket traders, REST readers, compliance entities surrendering and
organisations retiring and applying for certificates.

`python -m load.run` sets a server up and drives these users headless; to watch them in
locust's own web page instead, set up with `load.run` once (`--keep-cast FILE`) and run

    CERX_LOAD_CAST=FILE locust -f load/locustfile.py

Each request is reported to locust under its kind (`new_order`, `account`, `surrender`…) and
each refusal under its stable code.
"""

import os

from load.cast import CAST_VARIABLE
from load.crowd import crowd
from load.holders import ComplianceEntity, Retiree
from load.readers import Reader
from load.traders import Trader

__all__ = ["ComplianceEntity", "Reader", "Retiree", "Trader"]


def _host_from_cast() -> None:
    # locust takes every User class it finds among this module's names: no loop variable here
    for user in (ComplianceEntity, Reader, Retiree, Trader):
        user.host = crowd().cast.url


if os.environ.get(CAST_VARIABLE):  # the server is the cast's, unless --host says otherwise
    _host_from_cast()
