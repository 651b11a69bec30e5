"""Which webhook actions of a configuration read which project secrets, so the secrets page can show
where each one is used and which referenced names are not set yet. Pure: reads a loaded revision."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Mapping

from app.kiket.actions import WEBHOOK_ENV_PARAMS
from app.kiket.model import Action, ConfigRevision
from app.kiket.templating import Template

# Every webhook is signed with the first of these that is set (spec §12); see
# app/services/runtime/effects/notify.py::webhook.
SIGNING_SECRETS = ("WEBHOOK_SECRET", "KIKET_WEBHOOK_SECRET")


@dataclass(frozen=True)
class SecretUsage:
    """Secret name → the webhook actions reading it via `${env.NAME}`; and every webhook action."""

    references: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    webhooks: tuple[str, ...] = ()


def secret_usage(config: ConfigRevision) -> SecretUsage:
    """Where each secret is read; places are short labels like `automation notify-ops`."""
    references: dict[str, dict[str, None]] = {}
    webhooks: dict[str, None] = {}
    for place, action in _actions(config):
        if action.type != "webhook":
            continue
        webhooks.setdefault(place, None)
        for key, value in action.templates.items():
            # Only url, headers and body render secrets; elsewhere `env.*` renders empty.
            if key.strip("/").split("/")[0] in WEBHOOK_ENV_PARAMS:
                for name in _env_names(value):
                    references.setdefault(name, {}).setdefault(place, None)
    return SecretUsage({name: tuple(places) for name, places in sorted(references.items())}, tuple(webhooks))


def _actions(config: ConfigRevision) -> Iterator[tuple[str, Action]]:
    for automation in config.automations.values():
        for action in automation.actions:
            yield f"automation {automation.id}", action
    for workflow in config.workflows.values():
        for state in workflow.states.values():
            for hook, actions in state.hooks.items():
                for action in actions:
                    yield f"workflow {workflow.id}: {hook} of {state.key}", action
            if state.sla is not None:
                for action in (*state.sla.on_warning, *state.sla.on_breach):
                    yield f"workflow {workflow.id}: SLA of {state.key}", action
        for transition in workflow.transitions:
            for action in transition.actions:
                yield f"workflow {workflow.id}: transition {transition.name}", action


def _env_names(value: Any) -> Iterator[str]:
    if isinstance(value, Template):
        yield from value.env_names
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _env_names(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _env_names(item)
