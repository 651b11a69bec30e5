"""The workflow runtime: issues and their transitions, events and their effects, SLA timers and automations.

Issues (creating and editing, finding, field values, the issue page), keys, transitions, the event outbox,
the effects engine (`effects/`), SLA timers, automation runs, version migration, notifications,
attachments and seed issues. Reads the active configuration from `sync`, hands webhooks to `webhooks`;
imports no gateway.
"""
