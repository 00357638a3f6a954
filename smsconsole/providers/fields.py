"""Settings several adapters declare alike: the India DLT entity and template IDs. Each adapter
passes its own words (label, check description, placeholder, help), so forms, flags and messages
read as before; only the shape is shared. Beside base.py (ConfigField) rather than in common.py,
which base.py imports."""

from __future__ import annotations

from smsconsole.providers.base import ConfigField
from smsconsole.providers.common import pattern


def _dlt_id_field(name: str, label: str, description: str, placeholder: str, help: str, *,
                  shortest: int, required: bool) -> ConfigField:
    return ConfigField(
        name, label, required=required, validator=pattern(rf"\d{{{shortest},30}}", description),
        placeholder=placeholder, help=help,
    )


def dlt_entity_field(description: str, placeholder: str, help: str, *, label: str = "DLT entity ID",
                     shortest: int = 1, required: bool = False) -> ConfigField:
    """`dlt_entity_id`: the DLT principal entity ID, `shortest` to 30 digits."""
    return _dlt_id_field("dlt_entity_id", label, description, placeholder, help,
                         shortest=shortest, required=required)


def dlt_template_field(description: str, placeholder: str, help: str, *, label: str = "DLT template ID",
                       shortest: int = 1, required: bool = False) -> ConfigField:
    """`dlt_template_id`: the default DLT (content) template ID, `shortest` to 30 digits."""
    return _dlt_id_field("dlt_template_id", label, description, placeholder, help,
                         shortest=shortest, required=required)
