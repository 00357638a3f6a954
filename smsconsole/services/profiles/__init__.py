"""Profiles, consent and events: the one place that turns raw input (a CSV row, an API object)
into stored rows. Imports and the ingestion API both call `prepare_profile` / `upsert_profiles`
and `prepare_event` / `record_events`, in batches, with no per-row round trips.

The package: `preparing` (validating a row into a prepared profile or event), `writing` (the
batch upsert, recording events, a subscription change with its consent) and `reading` (search,
one profile's detail, reachability)."""

from smsconsole.services.profiles.preparing import (
    EVENT_FIELDS,
    OPTIN_EVENT,
    OPTOUT_EVENT,
    PROFILE_FIELDS,
    SUBSCRIPTION_STATES,
    AudienceDefaults,
    PreparedEvent,
    PreparedProfile,
    RowError,
    audience_defaults,
    prepare_event,
    prepare_profile,
    valid_timezone,
)
from smsconsole.services.profiles.reading import (
    MIN_PHONE_PREFIX_DIGITS,
    ConsentView,
    EventView,
    ProfileDetail,
    ProfileSummary,
    find_profile,
    get_profile,
    phone_prefixes,
    property_types,
    search_profiles,
    timezone_source,
    unreachable_reason,
)
from smsconsole.services.profiles.writing import (
    EventsResult,
    PropertyTypeConflict,
    UpsertResult,
    record_events,
    set_subscription,
    upsert_profiles,
)

__all__ = [
    "EVENT_FIELDS",
    "MIN_PHONE_PREFIX_DIGITS",
    "OPTIN_EVENT",
    "OPTOUT_EVENT",
    "PROFILE_FIELDS",
    "SUBSCRIPTION_STATES",
    "AudienceDefaults",
    "ConsentView",
    "EventView",
    "EventsResult",
    "PreparedEvent",
    "PreparedProfile",
    "ProfileDetail",
    "ProfileSummary",
    "PropertyTypeConflict",
    "RowError",
    "UpsertResult",
    "audience_defaults",
    "find_profile",
    "get_profile",
    "phone_prefixes",
    "prepare_event",
    "prepare_profile",
    "property_types",
    "record_events",
    "search_profiles",
    "set_subscription",
    "timezone_source",
    "unreachable_reason",
    "upsert_profiles",
    "valid_timezone",
]
