"""The CERX load: WebSocket traders, REST readers, compliance entities surrendering and
organisations retiring and applying for certificates.

`python -m load.run` sets a server up and drives these users headless; to watch them in
locust's own web page instead, set up with `load.run` once (`--keep-cast FILE`) and run

    CERX_LOAD_CAST=FILE locust -f load/locustfile.py

Each request is reported to locust under its kind (`new_order`, `account`, `surrender`…) and
each refusal under its stable code.
"""

from load.holders import ComplianceEntity, Retiree
from load.readers import Reader
from load.traders import Trader

__all__ = ["ComplianceEntity", "Reader", "Retiree", "Trader"]
