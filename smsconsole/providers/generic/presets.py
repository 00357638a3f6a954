"""Generic HTTP presets: filled Generic forms for gateways whose send API is documented, so an
operator starts from a working request instead of a blank one (CleverTap integrates BulkSMS,
Exotel, MSG91, Plivo and Textlocal this way). Each preset names the values the operator must
still supply; the dedicated adapter, where there is one, does more (receipts, batching rules,
error codes) and is the better choice.

Nimbus and SMSINDIAHUB, also named in CleverTap's list, have no preset: their APIs are not in our
reference and could not be checked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GenericPreset:
    key: str
    name: str
    description: str
    values: dict[str, str]
    needs: tuple[str, ...]  # what the operator must fill in, in words
    adapter: str | None = None  # the dedicated provider kind, when there is one
    documented_at: str = ""
    notes: tuple[str, ...] = field(default=())


_INDIA_NOTE = "DLT: $$TemplateID is filled from the message's template_id option (the DLT template id)"

PRESETS: tuple[GenericPreset, ...] = (
    GenericPreset(
        "bulksms", "BulkSMS.com (JSON API v1)", "POST /v1/messages with Basic auth; auto-unicode",
        {
            "method": "POST", "url": "https://api.bulksms.com/v1/messages?auto-unicode=true",
            "body_type": "json",
            "raw_body": '{"to": "$$To", "body": "$$Body", "from": "$$From", "userSuppliedId": "$$Ref"}',
            "success_status": "201", "message_id_path": "[0].id",
            "check_url": "https://api.bulksms.com/v1/profile",
        },
        ("put your BulkSMS username and password (or an API token id and secret) in Username and Password",),
        adapter="bulksms", documented_at="https://www.bulksms.com/developer/json/v1/",
    ),
    GenericPreset(
        "exotel", "Exotel (Singapore host)", "POST Sms/send.json, form-encoded",
        {
            "method": "POST", "url": "https://api.exotel.com/v1/Accounts/YOUR_ACCOUNT_SID/Sms/send.json",
            "body_type": "form",
            "params": "From=$$From\nTo=$$To\nBody=$$Body\nDltTemplateId=$$TemplateID\nCustomField=$$Ref",
            "success_status": "200", "message_id_path": "SMSMessage.Sid",
            "check_url": "https://api.exotel.com/v1/Accounts/YOUR_ACCOUNT_SID.json",
        },
        ("replace YOUR_ACCOUNT_SID in the URL and the Check URL (and api.exotel.com by api.in.exotel.com "
         "for the Mumbai cluster)", "put the API key and API token in Username and Password"),
        adapter="exotel", documented_at="https://developer.exotel.com/api/sms", notes=(_INDIA_NOTE,),
    ),
    GenericPreset(
        "msg91", "MSG91 (v2 sendsms, JSON, batched)", "POST api/v2/sendsms with the authkey header; 100 per request",
        {
            "method": "POST", "url": "https://api.msg91.com/api/v2/sendsms", "headers": "authkey: $$ApiKey",
            "body_type": "json",
            "raw_body": '{"sender": "$$From", "route": "4", "country": "0", "DLT_TE_ID": "$$TemplateID", "sms": []}',
            "batch_key": "sms", "batch_size": "100", "batch_item": '{"message": "$$Body", "to": ["$$ToNoPlus"]}',
            "success_status": "200", "success_body_contains": '"type":"success"', "message_id_path": "message",
            "check_url": "https://api.msg91.com/api/balance.php?authkey=$$ApiKey&type=4",
        },
        ("put your MSG91 authkey in API key", "set Sender to your 6-character DLT header"),
        adapter="msg91", documented_at="https://docs.msg91.com/", notes=(_INDIA_NOTE,),
    ),
    GenericPreset(
        "netcore", "Netcore (bulkpush SingleMsgApi)", "GET SingleMsgApi with feed id, user and password",
        {
            "method": "GET", "url": "https://bulkpush.mytoday.com/BulkSms/SingleMsgApi",
            "params": "feedid=YOUR_FEED_ID\nusername=YOUR_USERNAME\npassword=$$ApiKey\nTo=$$ToNoPlus\nText=$$Body\n"
                      "templateid=$$TemplateID\nentityid=YOUR_DLT_ENTITY_ID",
            "success_status": "200",
        },
        ("replace YOUR_FEED_ID, YOUR_USERNAME and YOUR_DLT_ENTITY_ID in Params", "put your Netcore password in API key"),
        adapter="netcore", documented_at="https://netcorecloud.com/", notes=(_INDIA_NOTE,),
    ),
    GenericPreset(
        "plivo", "Plivo (Message API)", "POST Account/{auth_id}/Message/ as JSON with Basic auth",
        {
            "method": "POST", "url": "https://api.plivo.com/v1/Account/YOUR_AUTH_ID/Message/", "body_type": "json",
            "raw_body": '{"src": "$$From", "dst": "$$ToNoPlus", "text": "$$Body"}',
            "success_status": "202", "message_id_path": "message_uuid[0]",
            "check_url": "https://api.plivo.com/v1/Account/YOUR_AUTH_ID/",
        },
        ("replace YOUR_AUTH_ID in the URL and the Check URL", "put the Auth ID and Auth Token in Username and Password", "set Sender to your Plivo number or sender ID"),
        adapter="plivo", documented_at="https://www.plivo.com/docs/messaging/api/message",
    ),
    GenericPreset(
        "textlocal-uk", "Textlocal (UK, api.txtlocal.com)", "POST /send/ form-encoded with the apikey",
        {
            "method": "POST", "url": "https://api.txtlocal.com/send/", "body_type": "form",
            "params": "apikey=$$ApiKey\nnumbers=$$ToNoPlus\nmessage=$$Body\nsender=$$From\ncustom=$$Ref",
            "success_status": "200", "success_body_contains": '"status":"success"',
            "message_id_path": "messages[0].id", "check_url": "https://api.txtlocal.com/balance/?apikey=$$ApiKey",
        },
        ("put your Textlocal API key in API key", "set Sender (up to 11 characters)"),
        adapter="textlocal", documented_at="https://api.txtlocal.com/docs/",
    ),
    GenericPreset(
        "textlocal-in", "Textlocal (India, api.textlocal.in)", "POST /send/ form-encoded with the apikey",
        {
            "method": "POST", "url": "https://api.textlocal.in/send/", "body_type": "form",
            "params": "apikey=$$ApiKey\nnumbers=$$ToNoPlus\nmessage=$$Body\nsender=$$From\ncustom=$$Ref",
            "success_status": "200", "success_body_contains": '"status":"success"',
            "message_id_path": "messages[0].id", "check_url": "https://api.textlocal.in/balance/?apikey=$$ApiKey",
        },
        ("put your Textlocal API key in API key", "set Sender to your 6-character DLT header"),
        adapter="textlocal", documented_at="https://api.textlocal.in/docs/",
    ),
)


def preset(key: str) -> GenericPreset:
    """The preset called `key`; KeyError when there is none."""
    for candidate in PRESETS:
        if candidate.key == key:
            return candidate
    raise KeyError(key)
