"""View model of the page the console shows instead of any page when its configuration does not load:
which file, which key, what is wrong and how to fix it (the sidebar stays, so the operator can move on
once the file is fixed)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hfops.config import DEFAULT_CONFIG_FILE
from hfops.errors import ConfigError

# "[refine] budget_ms", "unknown key [refine] budget_msx", "unknown section [refnie]"
_KEY = re.compile(r"\[(?P<section>[A-Za-z_]+)\](?:\s+(?P<key>[A-Za-z_][A-Za-z0-9_]*))?")


@dataclass
class ConfigProblem:
    """A configuration that does not load, explained."""

    file: str
    section: str | None
    key: str | None
    message: str
    fix: str

    @property
    def where(self) -> str:
        if self.section and self.key:
            return f"[{self.section}] {self.key}"
        if self.section:
            return f"[{self.section}]"
        return "(the file as a whole)"


def config_problem(exc: ConfigError, config_path: str | None) -> ConfigProblem:
    """Explain ``exc`` raised while loading ``config_path`` (None: ``./hfops.toml`` when present)."""
    message = str(exc)
    file = config_path or DEFAULT_CONFIG_FILE
    if message.startswith(f"{file}: "):
        message = message[len(file) + 2 :]
    found = _KEY.search(message)
    section = found.group("section") if found else None
    key = found.group("key") if found else None
    return ConfigProblem(file, section, key, message, _fix(message, file, section, key))


def _fix(message: str, file: str, section: str | None, key: str | None) -> str:
    where = f"[{section}] {key}" if section and key else f"[{section}]" if section else "it"
    if message.startswith("config file not found"):
        return (
            f"Create {file}, point HFOPS_CONFIG (or `hfops console --config`) at an existing file, or unset "
            "it to run on the defaults."
        )
    if "unknown section" in message:
        return f"Remove the [{section}] table from {file} or rename it to one of the known sections listed."
    if "unknown key" in message:
        return f"Remove {key} from [{section}] in {file}, or rename it to one of the known keys listed."
    if "out of range" in message or " is below " in message or " exceeds " in message:
        return f"Set {where} in {file} to a value the rule above allows."
    if "expected" in message:
        return f"Give {where} in {file} a value of the expected type."
    if "TOML" in message or "invalid" in message.lower():
        return f"Correct the TOML syntax of {file} at the place named above."
    return f"Correct {where} in {file} as the message says."
