"""The roles an API key can have (the access policy says what each may do)."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["officer", "analyst", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
