"""Segments: who a campaign is for, written as a small JSON language, checked against the
property catalog, compiled to one set-based SQL condition over profiles, and counted.

Definition format (what `smsconsole segments create --file def.json` reads)::

    {"match": "all",                      # all | any  (default all; an empty list = everyone)
     "conditions": [
       {"property": "plan", "op": "equals", "value": "gold"},            # profile property
       {"field": "country", "op": "in", "value": ["IN", "GB"]},          # built-in profile field
       {"property": "renewal_date", "op": "within_next_days", "value": 7},
       {"event": "order", "did": true,                                   # past behaviour
        "count": {"op": "at_least", "value": 2},                         # at_least | at_most | exactly
        "window": {"last_days": 30},               # or {"between": ["2026-01-01", "2026-01-31"]} or "ever"
        "where": [{"property": "amount", "op": "greater", "value": 100}]},
       {"subscription": "subscribed"},                    # or a list: ["subscribed", "never"]
       {"reachable": true},                               # SMS can reach them now
       {"match": "any", "conditions": [...]}              # nested group, at most 5 levels in all
     ]}

Operators by property type (profile properties take their type from the catalog, PropertyDef
scope "profile"; event properties from scope "event:NAME"):

    string   equals not_equals in not_in contains not_contains exists not_exists
    number   equals not_equals in not_in greater less between exists not_exists
    boolean  equals not_equals exists not_exists
    date     before after between within_last_days within_next_days more_than_days_ago
             exists not_exists
    list     contains not_contains contains_any exists not_exists

Built-in fields: user_id, name, country, timezone (strings; country codes are upper-cased) and
created_at (date).

Rules, each tested in tests/integration/test_segments.py (those of reading a definition in
tests/unit/test_segment_parsing.py):

- `contains` on a string is a case-sensitive substring test; on a list it is membership of one
  item, and `contains_any` takes a list of items. `in` / `not_in` take a list of values.
- A condition on a value someone lacks (or holds as another type) is false; the negative
  operators (not_equals, not_in, not_contains, not_exists) are their exact complements, so they
  match people without the property.
- `between` is inclusive at both ends. A date written without a time stands for the whole day:
  `before` that day means earlier than its first second, `after` it means later than its last,
  and as the end of `between` it includes the whole day. Dates are compared to the second, UTC.
- `within_last_days` N: from exactly N×24 h before now up to now, both included;
  `within_next_days` N: from now up to N×24 h ahead; `more_than_days_ago` N: before now − N days.
- Events: `did` (default true) with no count means at least once; `"did": false` means not once
  (and takes no count). `at_most` and `exactly 0` include people with no events at all; `at_least 0`
  is everyone. The window `{"last_days": N}` runs from now − N days to now inclusive; `between`
  follows the date rule above; `"ever"` is the default. `where` filters (all must hold) use the
  operators above on the event's properties.
- Problems are reported all at once as ValidationError([(path, reason)]) with paths such as
  `conditions[2].value` or `conditions[1].where[0].op`. An unknown property is an error; an event
  name never recorded is allowed (a campaign may wait for it) and comes back as a warning.

Compilation is a SQLAlchemy boolean expression over `Profile` (EXISTS / IN subqueries on events,
typed JSON reads per dialect), so audiences are `INSERT … SELECT` with no Python loop over people.

The package, by concern: `operators` (the operator catalogue: words, value kinds, types),
`definition` (the validated form and limits), `catalog` (what a definition can name, read from the
database), `parser` (JSON → definition, every problem at once), `compiler` (definition → SQL),
`reach` (counts), `descriptions` (a definition in words) and `crud` (saved segments). Everything
callers use is importable from here.
"""

from smsconsole.services.segments.catalog import (
    FIELDS,
    EventInfo,
    PropertyInfo,
    SegmentCatalog,
    catalog_from,
    event_names,
    segment_catalog,
)
from smsconsole.services.segments.compiler import compile_segment, segment_condition
from smsconsole.services.segments.crud import (
    NAME_LIMIT,
    SegmentView,
    campaigns_using_segment,
    create_segment,
    delete_segment,
    duplicate_segment,
    get_segment,
    list_segments,
    update_segment,
)
from smsconsole.services.segments.definition import (
    MAX_CONDITIONS,
    MAX_COUNT,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    Condition,
    EventCondition,
    Group,
    ReachableCondition,
    SegmentDefinition,
    SubscriptionCondition,
    ValueCondition,
    Window,
)
from smsconsole.services.segments.descriptions import describe_definition
from smsconsole.services.segments.operators import (
    COUNT_CATALOGUE,
    COUNT_OPS,
    DAYS,
    LIST,
    NEGATIVE_OPS,
    NO_VALUE,
    ONE,
    OPERATOR_CATALOGUE,
    OPERATORS,
    PAIR,
    CountOperator,
    Operator,
    operator_label,
    operator_menu,
    value_kind,
)
from smsconsole.services.segments.parser import check_definition, validate_definition
from smsconsole.services.segments.reach import (
    CountryReach,
    ReachEstimate,
    UnreachableCounts,
    estimate_reach,
    reach_query,
)

__all__ = [
    "COUNT_CATALOGUE", "COUNT_OPS", "DAYS", "FIELDS", "LIST", "MAX_CONDITIONS", "MAX_COUNT",
    "MAX_DAYS", "MAX_DEPTH", "MAX_LIST_VALUES", "NAME_LIMIT", "NEGATIVE_OPS", "NO_VALUE", "ONE",
    "OPERATORS", "OPERATOR_CATALOGUE", "PAIR", "Condition", "CountOperator", "CountryReach", "EventCondition",
    "EventInfo", "Group", "Operator", "PropertyInfo", "ReachEstimate", "ReachableCondition", "SegmentCatalog",
    "SegmentDefinition", "SegmentView", "SubscriptionCondition", "UnreachableCounts", "ValueCondition", "Window",
    "campaigns_using_segment", "catalog_from", "check_definition", "compile_segment", "create_segment",
    "delete_segment", "describe_definition", "duplicate_segment", "estimate_reach", "event_names", "get_segment",
    "list_segments", "operator_label", "operator_menu",
    "reach_query", "segment_catalog", "segment_condition", "update_segment",
    "validate_definition", "value_kind",
]
