"""The constrained field types of REST bodies, paths and queries.

Every integer has both bounds: JSON integers have no size, and one past a column's 64 bits
must be refused as invalid input, not fail in the database. Every text is free of control
characters, for the same reason (PostgreSQL stores no NUL) and so that it reads as it prints;
a long text may hold tabs and line breaks.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from exchange.protocol import END
from settlement.dvp import MAX_FEE_BP
from settlement.registry import FIRST_VINTAGE, LAST_VINTAGE

PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+" + END
LINES = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]+" + END  # printable, tabs and line breaks too

Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{1,16}" + END)]
"""A methodology or project code, as the registry takes it."""
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=PRINTABLE)]
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000, pattern=LINES)]
"""A document's text: a methodology, its notes, a specification, an expert's opinion."""
Vintage = Annotated[int, msgspec.Meta(ge=FIRST_VINTAGE, le=LAST_VINTAGE)]
FeeBp = Annotated[int, msgspec.Meta(ge=0, le=MAX_FEE_BP)]
Tonnes = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
AmountFen = Annotated[int, msgspec.Meta(ge=1, le=10**15)]
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
InstrumentId = Annotated[int, msgspec.Meta(ge=1, le=2**23 - 1)]
"""An instrument's number sits above a trade id's 40 book bits in a signed 64-bit id."""
