"""Provider groups as an operator manages them: members in priority order (at most ten), countries
owned by one group, exactly one default, health per member; rate limits on providers; test sends
through a group."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from smsconsole import clock
from smsconsole.models import AuditEntry, Message, ProviderGroup, ProviderGroupMember
from smsconsole.models import Provider as ProviderRow
from smsconsole.runtime import Runtime
from smsconsole.services import groups as svc
from smsconsole.services import messages, providers
from smsconsole.services.errors import Conflict, NotFound, ValidationError


async def _providers(rt: Runtime, *names: str) -> None:
    async with rt.factory() as session, session.begin():
        for name in names:
            await providers.create_provider(session, rt.box, kind="sandbox", name=name, values={}, actor="test")


async def _create(rt: Runtime, name: str, members: str, countries: str | None = None,
                  default: bool = False) -> svc.GroupView:
    async with rt.factory() as session, session.begin():
        return await svc.create_group(session, name=name, providers=members, countries=countries,
                                      is_default=default, actor="test")


async def _groups(rt: Runtime) -> dict[str, svc.GroupView]:
    async with rt.factory() as session:
        return {g.name: g for g in await svc.list_groups(session)}


async def test_create_keeps_priority_order_and_upper_cases_countries(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b", "c")
    view = await _create(runtime, "india", "c, a,b", countries="in gb")
    assert view.provider_names == ["c", "a", "b"]
    assert [m.position for m in view.members] == [1, 2, 3]
    assert view.countries == ("IN", "GB")
    assert view.is_default  # the first group is the default
    async with runtime.factory() as session:
        stored = await svc.get_group(session, "india")
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("group.%"))))
    assert stored == view
    assert actions == ["group.create"]


async def test_an_eleventh_provider_is_refused_naming_the_limit(runtime: Runtime) -> None:
    names = [f"p{i}" for i in range(11)]
    await _providers(runtime, *names)
    ten = await _create(runtime, "ten", ",".join(names[:10]))
    assert len(ten.members) == 10
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, "eleven", ",".join(names))
    assert caught.value.for_field("providers") == "a group holds at most 10 providers; 11 given"
    with pytest.raises(ValidationError):
        async with runtime.factory() as session, session.begin():
            await svc.update_group(session, "ten", providers=names, actor="test")
    assert list(await _groups(runtime)) == ["ten"]
    assert (await _groups(runtime))["ten"].provider_names == names[:10]


async def test_every_bad_field_is_reported_at_once_and_nothing_is_written(runtime: Runtime) -> None:
    await _providers(runtime, "a")
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, "bad name!", "a,nope,a", countries="GB,XX,ZZZ")
    fields = dict(caught.value.problems)
    assert set(fields) == {"name", "providers", "countries"}
    assert "listed more than once" in fields["providers"]
    assert fields["countries"].startswith("XX, ZZZ: not an ISO 3166 country code")
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, "g", "a,nope")
    assert caught.value.for_field("providers") == "no provider named 'nope'"
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, "g", "")
    assert caught.value.for_field("providers") == "add at least one provider"
    async with runtime.factory() as session:
        assert await session.scalar(select(ProviderGroup.id)) is None
        assert await session.scalar(select(ProviderGroupMember.id)) is None


async def test_a_country_belongs_to_one_group(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b")
    await _create(runtime, "uk", "a", countries="GB")
    with pytest.raises(ValidationError) as caught:
        await _create(runtime, "europe", "b", countries="FR,GB,DE")
    assert caught.value.for_field("countries") == (
        "GB already routed by group 'uk' (a country belongs to one group)")
    await _create(runtime, "europe", "b", countries="FR,DE")
    with pytest.raises(ValidationError):
        async with runtime.factory() as session, session.begin():
            await svc.update_group(session, "europe", countries="FR,GB", actor="test")
    async with runtime.factory() as session, session.begin():  # its own countries are not a clash
        view = await svc.update_group(session, "uk", countries="gb, ie", actor="test")
    assert view.countries == ("GB", "IE")


async def test_exactly_one_default(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b")
    await _create(runtime, "one", "a")
    await _create(runtime, "two", "b")
    assert {n: g.is_default for n, g in (await _groups(runtime)).items()} == {"one": True, "two": False}
    await _create(runtime, "three", "a,b", default=True)
    assert [n for n, g in (await _groups(runtime)).items() if g.is_default] == ["three"]
    async with runtime.factory() as session, session.begin():
        await svc.set_default_group(session, "one", actor="test")
    assert [n for n, g in (await _groups(runtime)).items() if g.is_default] == ["one"]
    with pytest.raises(Conflict, match="group 'one' is the default; make another group the default first"):
        async with runtime.factory() as session, session.begin():
            await svc.delete_group(session, "one", actor="test")
    for name in ("two", "three", "one"):  # the default goes last
        async with runtime.factory() as session, session.begin():
            await svc.delete_group(session, name, actor="test")
    assert await _groups(runtime) == {}


async def test_reorder_up_down_and_to_a_position(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b", "c")
    await _create(runtime, "g", "a,b,c")

    async def move(provider: str, **how: int) -> list[str]:
        async with runtime.factory() as session, session.begin():
            return (await svc.move_member(session, "g", provider, actor="test", **how)).provider_names

    assert await move("c", by=-1) == ["a", "c", "b"]
    assert await move("a", by=-1) == ["a", "c", "b"]  # already first
    assert await move("a", by=1) == ["c", "a", "b"]
    assert await move("b", to=1) == ["b", "c", "a"]
    with pytest.raises(ValidationError, match="must be between 1 and 3"):
        await move("b", to=4)
    with pytest.raises(ValidationError, match="'zz' is not in group 'g'"):
        await move("zz", by=1)
    async with runtime.factory() as session, session.begin():
        view = await svc.update_group(session, "g", providers=["a", "b"], new_name="g2", actor="test")
    assert (view.name, view.provider_names) == ("g2", ["a", "b"])
    async with runtime.factory() as session:
        positions = (await session.execute(select(ProviderGroupMember.position).order_by(ProviderGroupMember.position)))
        assert list(positions.scalars()) == [1, 2]


async def test_member_health_comes_from_the_provider(runtime: Runtime) -> None:
    await _providers(runtime, "up", "down", "open", "probe", "off")
    await _create(runtime, "g", "up,down,open,probe,off")
    until = clock.now() + timedelta(minutes=5)
    async with runtime.factory() as session, session.begin():
        await session.execute(update(ProviderRow).where(ProviderRow.name == "up").values(health="healthy"))
        await session.execute(update(ProviderRow).where(ProviderRow.name == "down").values(health="unhealthy"))
        await session.execute(update(ProviderRow).where(ProviderRow.name == "open")
                              .values(circuit_state="open", circuit_until=until, health="unhealthy"))
        await session.execute(update(ProviderRow).where(ProviderRow.name == "probe").values(circuit_state="half_open"))
        await session.execute(update(ProviderRow).where(ProviderRow.name == "off").values(enabled=False))
    view = (await _groups(runtime))["g"]
    assert [m.status() for m in view.members] == ["healthy", "unhealthy", "out of rotation", "probing", "disabled"]
    assert view.members[2].circuit_until == until.replace(microsecond=view.members[2].circuit_until.microsecond)
    assert view.members[2].status(until + timedelta(seconds=1)) == "probing"  # due for its probe


async def test_a_provider_in_a_group_cannot_be_removed(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b")
    await _create(runtime, "first", "a,b")
    await _create(runtime, "second", "b")
    for name, groups in (("a", "group 'first'"), ("b", "groups 'first', 'second'")):
        with pytest.raises(Conflict, match=f"provider '{name}' is used by {groups}"):
            async with runtime.factory() as session, session.begin():
                await providers.remove_provider(session, name, actor="test")
    async with runtime.factory() as session, session.begin():
        await svc.update_group(session, "first", providers="b", actor="test")
        await providers.remove_provider(session, "a", actor="test")
    assert (await _groups(runtime))["first"].provider_names == ["b"]


async def test_unknown_group_is_not_found(runtime: Runtime) -> None:
    async with runtime.factory() as session:
        with pytest.raises(NotFound, match="no group named 'nope'"):
            await svc.get_group(session, "nope")


# --- rate limits ---------------------------------------------------------------------------------


async def test_rate_limits_are_segments_per_second_above_zero(runtime: Runtime) -> None:
    async with runtime.factory() as session, session.begin():
        view = await providers.create_provider(session, runtime.box, kind="sandbox", name="a", values={},
                                               rate_limit="10", sender_rate_limit="", actor="test")
    assert (view.rate_limit, view.sender_rate_limit) == (10.0, None)
    with pytest.raises(ValidationError) as caught:
        async with runtime.factory() as session, session.begin():
            await providers.create_provider(session, runtime.box, kind="sandbox", name="bad name", values={},
                                            rate_limit="0", sender_rate_limit="fast", actor="test")
    assert set(dict(caught.value.problems)) == {"name", "rate_limit", "sender_rate_limit"}
    async with runtime.factory() as session, session.begin():  # not given: kept
        view = await providers.update_provider(session, runtime.box, "a", values={}, sender_rate_limit=1.5,
                                               actor="test")
    assert (view.rate_limit, view.sender_rate_limit) == (10.0, 1.5)
    async with runtime.factory() as session, session.begin():
        view = await providers.set_rate_limits(session, "a", rate_limit="", actor="test")
    assert (view.rate_limit, view.sender_rate_limit) == (None, 1.5)
    async with runtime.factory() as session:
        row = await session.scalar(select(ProviderRow).where(ProviderRow.name == "a"))
        assert row is not None and (row.rate_limit, row.sender_rate_limit) == (None, 1.5)


# --- test sends through a group --------------------------------------------------------------------


async def _queue(rt: Runtime, **target: str) -> messages.MessageView:
    async with rt.factory() as session, session.begin():
        return await messages.queue_test_message(session, to="+919876543210", body="hi", default_region=None,
                                                 actor="test", **target)


async def test_a_test_message_through_a_group_leaves_the_provider_to_the_dispatcher(runtime: Runtime) -> None:
    await _providers(runtime, "a", "b")
    group = await _create(runtime, "india", "a,b", countries="IN")
    queued = await _queue(runtime, group_name="india")
    assert (queued.group_name, queued.provider_name, queued.country) == ("india", None, "IN")
    direct = await _queue(runtime, provider_name="b")
    async with runtime.factory() as session:
        rows = {r.id: r for r in await session.scalars(select(Message))}
        recent = await messages.recent_messages(session)
    assert (rows[queued.id].group_id, rows[queued.id].provider_id, rows[queued.id].country) == (group.id, None, "IN")
    assert (rows[direct.id].group_id, rows[direct.id].provider_name, rows[direct.id].country) == (None, "b", "IN")
    assert [(v.id, v.group_name) for v in recent] == [(direct.id, None), (queued.id, "india")]


@pytest.mark.parametrize(
    ("target", "field", "reason"),
    [
        ({}, "provider", "choose a provider or a group"),
        ({"provider_name": "a", "group_name": "g"}, "provider", "choose a provider or a group, not both"),
        ({"group_name": "nope"}, "group", "no group named 'nope'"),
        ({"group_name": "off"}, "group", "group 'off' has no enabled provider"),
    ],
)
async def test_a_test_message_names_exactly_one_provider_or_group(
    runtime: Runtime, target: dict[str, str], field: str, reason: str,
) -> None:
    await _providers(runtime, "a", "disabled")
    await _create(runtime, "g", "a")
    await _create(runtime, "off", "disabled")
    async with runtime.factory() as session, session.begin():
        await session.execute(update(ProviderRow).where(ProviderRow.name == "disabled").values(enabled=False))
    with pytest.raises(ValidationError) as caught:
        await _queue(runtime, **target)
    assert caught.value.for_field(field) == reason
    async with runtime.factory() as session:
        assert await session.scalar(select(Message.id)) is None
