"""The Generic HTTP provider: any SMS gateway with an HTTP API, described by a request template
(method, URL, Basic auth, headers, form params or a JSON/text body) with `$$` placeholders, an
optional batching shape, and rules for reading the answer (success status, body check, message
id by JSON path or regex). Modelled on courier's "external" handler and CleverTap's "Other
(Generic)" provider.

Placeholders (case-sensitive) are filled per message and encoded for where they land:
percent-encoded in the URL and in params, JSON-escaped in a JSON body, verbatim in a text body
and in header values (a value with a line break is refused, never sent). Built in:

    $$To                 recipient, E.164 with '+'          $$ToNoPlus   the same without '+'
    $$Body               message text                       $$From       the message's sender, else the Sender setting
    $$Ref                our message reference (outbox id)
    $$TemplateID         OutboundMessage.options["template_id"]          (e.g. a DLT template id)
    $$TemplateVariables  OutboundMessage.options["template_variables"]
    $$ApiKey             the API key setting (stored encrypted; masked in previews)
    $$StatusCallback     our receipt URL for this provider (with ?token= when a webhook token is set)

plus `$$Name` for every name listed in the `custom_keys` setting, filled from
OutboundMessage.options[Name] ('' when the message has none).

Batching (batch_key set, batch_size > 1): a json body gets an array at batch_key built from the
batch_item template; form or GET params join the batch_key param's values with commas. $$To,
$$ToNoPlus and $$Ref belong in the item only. Any other placeholder outside the item (e.g. $$Body
in a "same text to many numbers" API) is shared: a request only carries messages that agree on it.

Answers: success when the status matches success_status and the body check (if any) passes;
the id comes from message_id_path (`[*]` maps ids to recipients in order), and a success with
no readable id (even an unparseable body) is still accepted, with no id. Failures are classified
by Provider.classify_http with a snippet of the body.

The package: `templating` (placeholders and setting formats), `responses` (success rules, message
id paths, reading an answer), `request` (the compiled config and rendering requests: the
reference renderer), `compiled` (the same requests from templates compiled once, for sending), `preview`
(the request as a masked curl command), `receipts` (receipts and replies by a field mapping),
`adapter` (GenericHttpProvider), with `curl` (importing a sample curl command) and `presets`
(filled forms for documented gateways) beside them. Nothing is imported here, so the catalogue
(presets, curl import, previews) costs no adapter and no httpx."""
