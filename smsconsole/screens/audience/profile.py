"""One person: identity and phone (or why the phone is unusable), subscription and whether SMS can
reach them now, typed properties, consent history and the latest events; subscribe or unsubscribe
on their behalf (recorded as an operator change)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from smsconsole.messages import SubscriptionChanged
from smsconsole.screens.base import ACTOR, SectionScreen
from smsconsole.screens.dialogs.confirm import ConfirmDialog
from smsconsole.screens.widgets.formatting import (
    compact_details,
    format_time,
    format_value,
    plural,
    reach_text,
    subscription_text,
)
from smsconsole.screens.widgets.tables import sync_rows
from smsconsole.services.errors import ServiceError
from smsconsole.services.profiles import ProfileDetail, audience_defaults, get_profile, set_subscription

EVENT_LIMIT = 100


def profile_key(user_id: str | None, profile_id: int) -> str:
    """What `get_profile` finds this profile by: the user id, else the profile id."""
    return user_id or str(profile_id)


def phone_text(p: ProfileDetail) -> Text:
    if p.phone_status == "missing":
        return Text("no phone", style="yellow")
    if p.phone_status == "invalid":
        return Text.assemble((f"✖ {p.phone_raw!r} is not usable", "red"),
                             (f": {p.phone_reason}" if p.phone_reason else "", "red"))
    line = Text.assemble((p.phone or "", "bold"), f" · {p.phone_type or 'unknown type'}")
    if not p.sms_capable:
        line.append(" · ⚠ may not receive SMS", style="yellow")
    if p.phone_raw and p.phone_raw != p.phone:
        line.append(f" (given as {p.phone_raw})", style="dim")
    return line


def subscription_line(p: ProfileDetail) -> Text:
    if p.subscription == "never":
        return Text("never opted in", style="dim")
    line = subscription_text(p.subscription)
    if p.subscription_at is not None:
        line.append(f" since {format_time(p.subscription_at)}")
    return line


TIMEZONE_SOURCES = {"phone": "from the phone's region", "default": "the default setting",
                    "given": "given by an import or the API"}


def timezone_text(p: ProfileDetail) -> Text:
    if not p.timezone:
        return Text("-")
    source = TIMEZONE_SOURCES.get(p.timezone_source or "")
    return Text.assemble(p.timezone, (f" ({source})" if source else "", "dim"))


def identity_text(p: ProfileDetail) -> Text:
    def row(label: str, value: Text | str) -> Text:
        return Text.assemble((f"\n{label:<10}", "dim"), value)

    text = Text(p.name or "(no name)", style="bold")
    text.append(f"  profile {p.id}", style="dim")
    text.append_text(row("User id", p.user_id or "-"))
    text.append_text(row("Phone", phone_text(p)))
    text.append_text(row("Country", p.country or "-"))
    text.append_text(row("Time zone", timezone_text(p)))
    text.append_text(row("SMS", subscription_line(p)))
    text.append_text(row("Reachable", reach_text(p.reachable, p.unreachable_reason)))
    text.append_text(row("Created", f"{format_time(p.created_at)} · updated {format_time(p.updated_at)}"))
    return text


class ProfileScreen(SectionScreen):
    """Pushed over the Audience section; escape goes back to the search."""

    MODE = "audience"
    MAIN = "#profile-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="profile.back", tooltip="Back to the search"),
        Binding("s", "set_subscription('subscribed')", "Subscribe", id="profile.subscribe",
                tooltip="Record an opt-in made through you (asks first)"),
        Binding("u", "set_subscription('unsubscribed')", "Unsubscribe", id="profile.unsubscribe",
                tooltip="Record an opt-out made through you (asks first)"),
        Binding("r", "refresh", "Refresh", show=False, id="profile.refresh", tooltip="Read the profile again"),
    ]

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.profile: ProfileDetail | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="profile-body"):
            with Horizontal(id="profile-top"):
                with Vertical(id="profile-identity", classes="panel") as identity:
                    identity.border_title = "Profile"
                    yield Static("Loading…", id="profile-summary")
                with Vertical(id="profile-properties", classes="panel") as properties:
                    properties.border_title = "Properties"
                    yield DataTable(id="profile-properties-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="profile-consents", classes="panel") as consents:
                consents.border_title = "Subscription history (latest first)"
                yield DataTable(id="profile-consents-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="profile-events", classes="panel") as events:
                events.border_title = "Events"
                yield DataTable(id="profile-events-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        properties = self.query_one("#profile-properties-table", DataTable)
        properties.add_column("Property", key="name")
        properties.add_column("Type", key="type")
        properties.add_column("Value", key="value")
        consents = self.query_one("#profile-consents-table", DataTable)
        consents.add_column("When", key="at")
        consents.add_column("State", key="state")
        consents.add_column("Source", key="source")
        consents.add_column("Phone", key="phone")
        consents.add_column("Detail", key="detail")
        events = self.query_one("#profile-events-table", DataTable)
        events.add_column("When", key="at")
        events.add_column("Event", key="name")
        events.add_column("Properties", key="properties")
        self.load_profile()

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.load_profile()

    @work(exclusive=True, group="profile-load", exit_on_error=False)
    async def load_profile(self) -> None:
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session:
                defaults = await audience_defaults(session)
                profile = await get_profile(session, self.key, default_region=defaults.region,
                                            default_timezone=defaults.timezone, event_limit=EVENT_LIMIT)
        except ServiceError as exc:
            self.query_one("#profile-summary", Static).update(Text(f"✖ {exc}", style="red"))
            return
        self._show(profile)

    def _show(self, p: ProfileDetail) -> None:
        self.profile = p
        with self.app.batch_update():
            self.query_one("#profile-summary", Static).update(identity_text(p))
            sync_rows(self.query_one("#profile-properties-table", DataTable), {
                name: (name, p.property_types.get(name, "string"), format_value(value))
                for name, value in sorted(p.properties.items())
            })
            self.query_one("#profile-properties").border_subtitle = plural(len(p.properties), "property", "properties")
            sync_rows(self.query_one("#profile-consents-table", DataTable), {
                str(index): (format_time(c.at, seconds=True), subscription_text(c.state), c.source, c.phone or "-",
                             c.detail or "")
                for index, c in enumerate(p.consents)
            })
            sync_rows(self.query_one("#profile-events-table", DataTable), {
                str(index): (format_time(e.at, seconds=True), e.name, compact_details(e.properties))
                for index, e in enumerate(p.events)
            })
            shown = f", latest {len(p.events)}" if p.event_count > len(p.events) else ""
            self.query_one("#profile-events").border_title = f"Events ({p.event_count:,}{shown}, latest first)"

    # --- subscription ------------------------------------------------------------------------

    def action_set_subscription(self, state: str) -> None:
        if self.profile is None:
            return
        if self.profile.subscription == state:
            self.notify(f"Already {state}.", timeout=3)
            return
        self.change_subscription(state)

    @work(exclusive=True, group="profile-subscription", exit_on_error=False)
    async def change_subscription(self, state: str) -> None:
        p = self.profile
        assert p is not None
        who = p.name or p.user_id or p.phone or f"profile {p.id}"
        question = (f"Unsubscribe {who}? They get no SMS until they opt in again."
                    if state == "unsubscribed" else
                    f"Subscribe {who}? Do this only when they asked you to: the opt-in is recorded as yours.")
        confirmed = await self.app.push_screen_wait(ConfirmDialog(
            "Unsubscribe" if state == "unsubscribed" else "Subscribe", question,
            confirm_label="Unsubscribe" if state == "unsubscribed" else "Subscribe",
            destructive=state == "unsubscribed",
        ))
        if not confirmed:
            return
        runtime = await self.runtime()
        try:
            async with runtime.factory() as session, session.begin():
                await set_subscription(session, p.id, state, source="operator", detail=ACTOR)
        except ServiceError as exc:
            self.notify(str(exc), title="Not changed", severity="error")
            return
        self.notify(f"{who} is now {state}.", title="Subscription changed")
        self.post_message(SubscriptionChanged(p.id, state))
        self.load_profile()
