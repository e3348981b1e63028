"""The names of our apps and models as the admin shows them, marked for translation.

Django derives most model names from the class name; giving each model a translated
`verbose_name` in its Meta would rewrite every app's migrations. Instead
`config.i18n.translate_model_names` (run once the apps are ready) swaps each English name
below for its lazy translation at run time: migrations stay as they are, and `makemessages`
finds the texts here. A model missing from this list simply keeps its English name.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

APP_NAMES = {
    "crm": gettext_noop("CRM"),
    "governance": gettext_noop("Governance"),
    "capture": gettext_noop("Capture"),
    "portal": gettext_noop("Admin portal"),
}

# app_label.ModelName: (verbose_name, verbose_name_plural), the English Django shows today
MODEL_NAMES = {
    "crm.Team": (gettext_noop("team"), gettext_noop("teams")),
    "crm.User": (gettext_noop("user"), gettext_noop("users")),
    "crm.UserAddress": (gettext_noop("user address"), gettext_noop("user addresses")),
    "crm.ApiToken": (gettext_noop("api token"), gettext_noop("api tokens")),
    "crm.Organization": (gettext_noop("organization"), gettext_noop("organizations")),
    "crm.OrganizationDomain": (
        gettext_noop("organization domain"),
        gettext_noop("organization domains"),
    ),
    "crm.Contact": (gettext_noop("contact"), gettext_noop("contacts")),
    "crm.ContactEmail": (gettext_noop("contact email"), gettext_noop("contact emails")),
    "crm.Item": (gettext_noop("item"), gettext_noop("items")),
    "governance.OrgSettings": (
        gettext_noop("organisation settings"),
        gettext_noop("organisation settings"),
    ),
    "governance.UserSettings": (gettext_noop("user settings"), gettext_noop("user settings")),
    "governance.NeverLogRule": (gettext_noop("never log rule"), gettext_noop("never log rules")),
    "governance.AuditEvent": (gettext_noop("audit event"), gettext_noop("audit events")),
    "governance.AuditAnchor": (gettext_noop("audit anchor"), gettext_noop("audit anchors")),
    "governance.ConsentRecord": (gettext_noop("consent record"), gettext_noop("consent records")),
    "governance.WebhookSubscription": (
        gettext_noop("webhook subscription"),
        gettext_noop("webhook subscriptions"),
    ),
    "governance.WebhookDelivery": (
        gettext_noop("webhook delivery"),
        gettext_noop("webhook deliveries"),
    ),
    "governance.WebhookAttempt": (
        gettext_noop("webhook attempt"),
        gettext_noop("webhook attempts"),
    ),
    "capture.AddinDeviceGrant": (
        gettext_noop("addin device grant"),
        gettext_noop("addin device grants"),
    ),
    "capture.CaptureAddress": (gettext_noop("capture address"), gettext_noop("capture addresses")),
    "capture.SmtpRateEvent": (gettext_noop("smtp rate event"), gettext_noop("smtp rate events")),
    "capture.MailboxConnection": (
        gettext_noop("mailbox connection"),
        gettext_noop("mailbox connections"),
    ),
    "capture.MailboxFolder": (gettext_noop("mailbox folder"), gettext_noop("mailbox folders")),
    "capture.SkippedUid": (gettext_noop("skipped uid"), gettext_noop("skipped uids")),
    "capture.DataSubjectRequest": (
        gettext_noop("data subject request"),
        gettext_noop("data subject requests"),
    ),
    "capture.ErasedAddress": (gettext_noop("erased address"), gettext_noop("erased addresss")),
    "capture.DataKey": (gettext_noop("data key"), gettext_noop("data keys")),
    "capture.RawMessage": (gettext_noop("raw message"), gettext_noop("raw messages")),
    "capture.Thread": (gettext_noop("thread"), gettext_noop("threads")),
    "capture.EmailMessage": (gettext_noop("email message"), gettext_noop("email messages")),
    "capture.MessageRef": (gettext_noop("message ref"), gettext_noop("message refs")),
    "capture.Capture": (gettext_noop("capture"), gettext_noop("captures")),
    "capture.Participant": (gettext_noop("participant"), gettext_noop("participants")),
    "capture.Blob": (gettext_noop("blob"), gettext_noop("blobs")),
    "capture.Attachment": (gettext_noop("attachment"), gettext_noop("attachments")),
    "capture.Meeting": (gettext_noop("meeting"), gettext_noop("meetings")),
    "capture.MeetingOverride": (
        gettext_noop("meeting override"),
        gettext_noop("meeting overrides"),
    ),
    "capture.MeetingMessage": (gettext_noop("meeting message"), gettext_noop("meeting messages")),
    "capture.ThreadLink": (gettext_noop("thread link"), gettext_noop("thread links")),
    "capture.ReviewItem": (gettext_noop("review item"), gettext_noop("review items")),
    "capture.LinkRule": (gettext_noop("link rule"), gettext_noop("link rules")),
    "capture.ThreadUnlink": (gettext_noop("thread unlink"), gettext_noop("thread unlinks")),
    "capture.UnmatchedReference": (
        gettext_noop("unmatched reference"),
        gettext_noop("unmatched references"),
    ),
    "capture.RetentionPolicy": (
        gettext_noop("retention policy"),
        gettext_noop("retention policies"),
    ),
    "capture.LegalHold": (gettext_noop("legal hold"), gettext_noop("legal holds")),
    "capture.ExpiryJob": (gettext_noop("expiry job"), gettext_noop("expiry jobs")),
    "capture.PurgeRun": (gettext_noop("purge run"), gettext_noop("purge runs")),
    "capture.BinnedMessage": (gettext_noop("binned message"), gettext_noop("binned messages")),
    "capture.BinnedBlob": (gettext_noop("binned blob"), gettext_noop("binned blobs")),
    "capture.FileDeletion": (gettext_noop("file deletion"), gettext_noop("file deletions")),
    "capture.DispositionReview": (
        gettext_noop("disposition review"),
        gettext_noop("disposition reviews"),
    ),
    "capture.ExpiringMessage": (
        gettext_noop("message expiry"),
        gettext_noop("message expiry (why does this expire then?)"),
    ),
    "capture.Category": (gettext_noop("category"), gettext_noop("categories")),
    "capture.TimelinePin": (gettext_noop("timeline pin"), gettext_noop("timeline pins")),
    "capture.TrackedMessage": (gettext_noop("tracked message"), gettext_noop("tracked messages")),
    "capture.TrackedContact": (gettext_noop("tracked contact"), gettext_noop("tracked contacts")),
    "capture.TrackingEvent": (gettext_noop("tracking event"), gettext_noop("tracking events")),
}
