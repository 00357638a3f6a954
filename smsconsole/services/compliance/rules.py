"""Country rules: the package's countries.toml, extended by <config dir>/compliance-rules.toml.

The file is versioned data (see its header for the format). Loading checks every field and refuses
unknown keys, so a typo cannot silently switch a rule off; every problem in a file is reported at
once, each naming the file and the dotted field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from smsconsole.services.errors import ServiceError

SENDER_TYPES = ("long_code", "short_code", "toll_free", "alphanumeric")
SENDER_TYPE_LABELS = {
    "long_code": "long code",
    "short_code": "short code",
    "toll_free": "toll-free",
    "alphanumeric": "alphanumeric",
}
CATEGORIES = ("promotional", "transactional", "service")  # a campaign's content category
REGISTRATIONS = ("10dlc", "toll_free_verification", "short_code_program", "dlt", "sender_id_registration")
APPLIES = ("all", "promotional")
RULE_NAMES = ("sender_types", "registration", "consent", "quiet_hours", "promotional_window", "opt_out")
OVERRIDE_FILE = "compliance-rules.toml"

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class Window:
    """An allowed local-time window [start, end); an end before the start wraps midnight."""

    start: time
    end: time
    applies: str = "all"

    def contains(self, t: time) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def words(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Source:
    rule: str
    title: str
    url: str


@dataclass(frozen=True)
class CountryRule:
    country: str
    name: str
    sender_types: tuple[str, ...]
    registration: Mapping[str, str]  # sender type -> registration word
    consent_required: bool
    consent_applies: str
    quiet_hours: Window | None
    promotional_window: Window | None
    opt_out_required: bool
    opt_out_applies: str
    opt_out_phrases: tuple[str, ...]
    opt_out_example: str
    sources: tuple[Source, ...]
    notes: str

    def applies(self, applies: str, category: str) -> bool:
        """Whether a rule marked `applies` ("all" | "promotional") covers content of `category`."""
        return applies == "all" or category == "promotional"

    def has_opt_out(self, body: str) -> bool:
        """Whether the body carries any opt-out phrase, case-insensitive, as whole words."""
        pattern = _phrases_pattern(self.opt_out_phrases)
        return pattern is not None and pattern.search(body) is not None

    def sources_for(self, rule: str) -> tuple[Source, ...]:
        return tuple(source for source in self.sources if source.rule == rule)


@dataclass(frozen=True)
class RuleBook:
    version: str
    countries: Mapping[str, CountryRule]
    filtered_link_domains: tuple[str, ...]
    files: tuple[str, ...]
    filtered_link_sources: tuple[Source, ...] = ()

    def get(self, country: str | None) -> CountryRule | None:
        if not country:
            return None
        return self.countries.get(country.upper())


class RulesError(ServiceError, ValueError):
    """A rules file that cannot be used: every problem, each as 'file: dotted.field: reason'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def package_rules_path() -> Path:
    return Path(__file__).with_name("countries.toml")


_default_dir: Path | None = None


def use_config_dir(config_dir: Path | None) -> None:
    """The config directory `load_rules()` reads the override from when not given one (Runtime.open
    sets it for the process)."""
    global _default_dir
    _default_dir = config_dir


def load_rules(config_dir: Path | None = None) -> RuleBook:
    """The package's rules, with <config_dir>/compliance-rules.toml on top when it exists.

    Cached per (path, mtime) of both files, so an edited override is picked up on the next call.
    """
    package = package_rules_path()
    config_dir = config_dir if config_dir is not None else _default_dir
    override = config_dir / OVERRIDE_FILE if config_dir is not None else None
    return _load_cached(_stamp(package), _stamp(override) if override is not None else None)


def _stamp(path: Path) -> tuple[str, int | None]:
    try:
        return str(path), path.stat().st_mtime_ns
    except FileNotFoundError:
        return str(path), None


@lru_cache(maxsize=16)
def _load_cached(package: tuple[str, int | None], override: tuple[str, int | None] | None) -> RuleBook:
    base_path = Path(package[0])
    base = _parse_file(base_path, base_path.name, package_file=True)
    files = [str(base_path)]
    version = base.version
    countries = dict(base.countries)
    domains = list(base.filtered_link_domains)
    link_sources = list(base.filtered_link_sources)
    if override is not None and override[1] is not None:
        path = Path(override[0])
        extra = _parse_file(path, str(path), package_file=False)
        files.append(str(path))
        if extra.version:
            version = f"{version} (override {extra.version})"
        countries.update(extra.countries)
        domains += [domain for domain in extra.filtered_link_domains if domain not in domains]
        link_sources += extra.filtered_link_sources
    return RuleBook(
        version=version,
        countries=MappingProxyType(dict(sorted(countries.items()))),
        filtered_link_domains=tuple(domains),
        files=tuple(files),
        filtered_link_sources=tuple(link_sources),
    )


@lru_cache(maxsize=256)
def _phrases_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    if not phrases:
        return None
    alternatives = sorted((r"\s+".join(map(re.escape, p.split())) for p in phrases if p.strip()), key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


# --- parsing -----------------------------------------------------------------------------------

_TOP_KEYS = {"version", "filtered_link_domains", "filtered_link_sources", "countries"}
_COUNTRY_KEYS = {"name", "sender_types", "registration", "consent", "quiet_hours", "promotional_window", "opt_out", "sources", "notes"}
_REQUIRED_COUNTRY_KEYS = ("name", "sender_types", "consent", "opt_out", "sources")


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, where: str, reason: str) -> None:
        self.items.append(f"{self.file}: {where}: {reason}" if where else f"{self.file}: {reason}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                self.add(f"{where}.{key}" if where else key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, where: str, value: Any) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.add(where, "must be a table")
            return None
        return value

    def text(self, where: str, value: Any, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.add(where, "must be a string" if empty else "must be a non-empty string")
            return ""
        return value.strip()

    def boolean(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.add(where, "must be true or false")
            return False
        return value

    def word(self, where: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            self.add(where, f"must be one of {', '.join(allowed)} (got {value!r})")
            return allowed[0]
        return value

    def strings(self, where: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.add(where, "must be a list of strings")
            return []
        return value

    def hhmm(self, where: str, value: Any) -> time:
        match = _HHMM.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            self.add(where, f"must be HH:MM (got {value!r})")
            return time(0, 0)
        return time(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class _Parsed:
    version: str
    countries: dict[str, CountryRule]
    filtered_link_domains: list[str]
    filtered_link_sources: list[Source] = field(default_factory=list)


def _parse_file(path: Path, label: str, *, package_file: bool) -> _Parsed:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError([f"{label}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise RulesError([f"{label}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([f"{label}: not valid TOML: {exc}"]) from None
    problems = _Problems(label)
    parsed = _parse_document(data, problems, package_file=package_file)
    if problems.items:
        raise RulesError(problems.items)
    return parsed


def _parse_document(data: Mapping[str, Any], problems: _Problems, *, package_file: bool) -> _Parsed:
    problems.unknown_keys("", data, _TOP_KEYS)
    version = ""
    if "version" in data or package_file:
        version = problems.text("version", data.get("version"))
    domains: list[str] = []
    for index, domain in enumerate(problems.strings("filtered_link_domains", data.get("filtered_link_domains", []))):
        cleaned = domain.strip().lower()
        if not cleaned or "/" in cleaned or " " in cleaned or "." not in cleaned:
            problems.add(f"filtered_link_domains[{index}]", f"must be a domain name such as bit.ly (got {domain!r})")
        elif cleaned not in domains:
            domains.append(cleaned)
    link_sources = _sources("filtered_link_sources", data.get("filtered_link_sources", []), problems, rule_needed=False)
    if domains and package_file and not link_sources:
        problems.add("filtered_link_sources", "cite at least one source for filtered_link_domains")
    countries: dict[str, CountryRule] = {}
    table = problems.table("countries", data.get("countries", {}))
    for code, entry in (table or {}).items():
        where = f"countries.{code}"
        if not _COUNTRY.fullmatch(code):
            problems.add(where, "country code must be two capital letters (ISO 3166-1 alpha-2)")
            continue
        entry = problems.table(where, entry)
        if entry is not None:
            rule = _parse_country(code, entry, where, problems)
            if rule is not None:
                countries[code] = rule
    return _Parsed(version, countries, domains, link_sources)


def _parse_country(code: str, entry: Mapping[str, Any], where: str, problems: _Problems) -> CountryRule | None:
    before = len(problems.items)
    problems.unknown_keys(where, entry, _COUNTRY_KEYS)
    for key in _REQUIRED_COUNTRY_KEYS:
        if key not in entry:
            problems.add(f"{where}.{key}", "missing")
    name = problems.text(f"{where}.name", entry.get("name", code))

    sender_types: list[str] = []
    for index, value in enumerate(problems.strings(f"{where}.sender_types", entry.get("sender_types", []))):
        if value not in SENDER_TYPES:
            problems.add(f"{where}.sender_types[{index}]", f"unknown sender type {value!r} (one of {', '.join(SENDER_TYPES)})")
        elif value not in sender_types:
            sender_types.append(value)
    if "sender_types" in entry and not sender_types and len(problems.items) == before:
        problems.add(f"{where}.sender_types", "list at least one sender type")

    registration: dict[str, str] = {}
    for sender_type, word in (problems.table(f"{where}.registration", entry.get("registration", {})) or {}).items():
        key = f"{where}.registration.{sender_type}"
        if sender_type not in SENDER_TYPES:
            problems.add(key, f"unknown sender type (one of {', '.join(SENDER_TYPES)})")
        elif sender_type not in sender_types:
            problems.add(key, "sender type not in sender_types")
        registration[sender_type] = problems.word(key, word, REGISTRATIONS)

    consent = (problems.table(f"{where}.consent", entry["consent"]) if "consent" in entry else None) or {"required": False}
    problems.unknown_keys(f"{where}.consent", consent, {"required", "applies"})
    consent_required = problems.boolean(f"{where}.consent.required", consent.get("required"))
    consent_applies = problems.word(f"{where}.consent.applies", consent.get("applies", "all"), APPLIES)

    quiet_hours = _window(f"{where}.quiet_hours", entry.get("quiet_hours"), problems, with_applies=True)
    promotional_window = _window(f"{where}.promotional_window", entry.get("promotional_window"), problems, with_applies=False)

    opt_out = (problems.table(f"{where}.opt_out", entry["opt_out"]) if "opt_out" in entry else None) or {"required": False}
    problems.unknown_keys(f"{where}.opt_out", opt_out, {"required", "applies", "phrases", "example"})
    opt_out_required = problems.boolean(f"{where}.opt_out.required", opt_out.get("required"))
    opt_out_applies = problems.word(f"{where}.opt_out.applies", opt_out.get("applies", "all"), APPLIES)
    phrases = tuple(p.strip() for p in problems.strings(f"{where}.opt_out.phrases", opt_out.get("phrases", [])) if p.strip())
    example = problems.text(f"{where}.opt_out.example", opt_out.get("example", ""), empty=not opt_out_required)
    if opt_out_required and not phrases:
        problems.add(f"{where}.opt_out.phrases", "list the phrases that count as opt-out text")
    elif phrases and example and not _phrases_pattern(phrases).search(example):  # type: ignore[union-attr]
        problems.add(f"{where}.opt_out.example", "must contain one of the phrases")

    sources = _sources(f"{where}.sources", entry.get("sources", []), problems, rule_needed=True)
    cited = {source.rule for source in sources}
    for rule in RULE_NAMES:
        if rule in entry and rule not in cited:
            problems.add(f"{where}.sources", f"no source for {rule}")
    notes = problems.text(f"{where}.notes", entry.get("notes", ""), empty=True)

    if len(problems.items) > before:
        return None
    return CountryRule(
        country=code,
        name=name,
        sender_types=tuple(sender_types),
        registration=MappingProxyType(registration),
        consent_required=consent_required,
        consent_applies=consent_applies,
        quiet_hours=quiet_hours,
        promotional_window=promotional_window,
        opt_out_required=opt_out_required,
        opt_out_applies=opt_out_applies,
        opt_out_phrases=phrases,
        opt_out_example=example,
        sources=tuple(sources),
        notes=notes,
    )


def _window(where: str, value: Any, problems: _Problems, *, with_applies: bool) -> Window | None:
    if value is None:
        return None
    table = problems.table(where, value)
    if table is None:
        return None
    allowed = {"start", "end", "applies"} if with_applies else {"start", "end"}
    problems.unknown_keys(where, table, allowed)
    start = problems.hhmm(f"{where}.start", table.get("start"))
    end = problems.hhmm(f"{where}.end", table.get("end"))
    if start == end and "start" in table and _HHMM.fullmatch(str(table.get("start"))):
        problems.add(f"{where}.end", "must differ from start (leave the window out if sending is allowed all day)")
    applies = problems.word(f"{where}.applies", table.get("applies", "all"), APPLIES) if with_applies else "promotional"
    return Window(start, end, applies)


def _sources(where: str, value: Any, problems: _Problems, *, rule_needed: bool) -> list[Source]:
    if not isinstance(value, list):
        problems.add(where, "must be a list of { rule, title, url } tables" if rule_needed else "must be a list of { title, url } tables")
        return []
    sources: list[Source] = []
    keys = {"rule", "title", "url"} if rule_needed else {"title", "url"}
    for index, item in enumerate(value):
        key = f"{where}[{index}]"
        table = problems.table(key, item)
        if table is None:
            continue
        problems.unknown_keys(key, table, keys)
        rule = problems.word(f"{key}.rule", table.get("rule"), RULE_NAMES) if rule_needed else ""
        title = problems.text(f"{key}.title", table.get("title"))
        url = problems.text(f"{key}.url", table.get("url"))
        if url and not url.startswith(("https://", "http://")):
            problems.add(f"{key}.url", "must start with https:// or http://")
        sources.append(Source(rule, title, url))
    return sources
