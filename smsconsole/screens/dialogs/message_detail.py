"""One message, read only: its send attempts, then what came back (receipts, replies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Static

from smsconsole.screens.widgets.formatting import format_time, state_text
from smsconsole.services.messages import AttemptView, MessageView
from smsconsole.services.stats import ReceiptView, ReplyView


class MessageDetailDialog(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="message-detail.close", tooltip="Back to the list"),
    ]

    def __init__(self, message: MessageView, attempts: Sequence[AttemptView],
                 receipts: Sequence[ReceiptView] = (), replies: Sequence[ReplyView] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self.message = message
        self.attempts = list(attempts)
        self.receipts = list(receipts)
        self.replies = list(replies)

    def compose(self) -> ComposeResult:
        m = self.message
        with Vertical(id="message-detail", classes="dialog") as dialog:
            dialog.border_title = f"Message {m.id}"
            with VerticalScroll(id="message-detail-body"):
                summary = Text.assemble(
                    ("To ", "dim"), m.to_number, ("  via ", "dim"), m.provider_name or "-",
                    ("  state ", "dim"), state_text(m.shown_state),
                    ("\nCreated ", "dim"), format_time(m.created_at, seconds=True),
                    ("  sent ", "dim"), format_time(m.sent_at, seconds=True),
                    ("  ", ""), (f"{m.encoding}, {m.segments} segment(s), {m.attempts} attempt(s)", "dim"),
                )
                if m.price_text:
                    summary.append_text(Text.assemble(("\nCost ", "dim"), m.price_text))
                if m.campaign:
                    run = f" run {m.run_number}" if m.run_number else ""
                    summary.append_text(Text.assemble(("\nCampaign ", "dim"), (f"{m.campaign}{run}", "bold")))
                if m.provider_message_id:
                    summary.append_text(Text.assemble(("\nProvider id ", "dim"), m.provider_message_id))
                if m.retrying:
                    summary.append_text(Text.assemble(("\nNext attempt ", "dim"),
                                                      (format_time(m.next_attempt_at, seconds=True), "yellow")))
                if m.reason or m.error_code:
                    code = f"[{m.error_code}] " if m.error_code else ""
                    summary.append_text(Text.assemble(("\nReason ", "dim"),
                                                      (f"{code}{m.shown_reason or ''}", "red")))
                yield Static(summary, id="message-detail-summary")
                yield Static(Text(m.body), id="message-detail-text", classes="message-text")
                yield DataTable(id="message-attempts", cursor_type="row", show_cursor=False)
                yield DataTable(id="message-receipts", cursor_type="row", show_cursor=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="close", compact=True, variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#message-attempts", DataTable)
        table.add_columns("Started", "Provider", "Outcome", "HTTP", "Error")
        for attempt in self.attempts:
            error = " ".join(part for part in (f"[{attempt.error_code}]" if attempt.error_code else "",
                                               attempt.error_message or "") if part)
            table.add_row(format_time(attempt.started_at, seconds=True), attempt.provider_name or "-",
                          state_text(attempt.outcome), str(attempt.http_status or "-"), error or "-")
        if not self.attempts:
            table.add_row("-", "-", "no attempts yet", "-", "-")
        back = self.query_one("#message-receipts", DataTable)
        back.add_columns("Time", "Came back", "State", "Detail")
        for receipt in self.receipts:
            part = f" (part {receipt.part}/{receipt.parts})" if receipt.part and receipt.parts else ""
            detail = " ".join(p for p in (f"via {receipt.via}", f"[{receipt.error_code}]" if receipt.error_code else "",
                                          receipt.reason or "") if p)
            back.add_row(format_time(receipt.occurred_at or receipt.received_at, seconds=True),
                         f"receipt {receipt.provider_status}{part}",
                         state_text(receipt.state) if receipt.state else Text("ignored", style="dim"), detail)
        for reply in self.replies:
            back.add_row(format_time(reply.received_at, seconds=True), f"reply {reply.keyword or ''}".strip(),
                         reply.action or "-", reply.text)
        if not self.receipts and not self.replies:
            back.add_row("-", "no receipt or reply yet", "-", "-")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        self.dismiss(None)
