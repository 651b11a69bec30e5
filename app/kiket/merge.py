"""Repository precedence (spec §13): repository → project_override → organization_default → bundled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from app.kiket.boards import RawBoard
from app.kiket.diagnostics import Diagnostic, Provenance
from app.kiket.loader import LayerConfig
from app.kiket.model import Automation, IssueType, Member, PreservedDocument, Role, Workflow
from app.kiket.project import MEMBER_PERMISSIONS, RolePart, builtin_roles
from app.kiket.reader import PendingRef

# The bundled layer is a fallback for these kinds only (plus the built-in roles).
BUNDLED_KINDS = ("workflows", "issue_types", "boards")


@dataclass
class MergedConfig:
    """Winning elements of every kind, each remembering its layer in `prov`."""

    model_version: str = "1.0"
    project: dict[str, Any] = field(default_factory=dict)
    project_provs: dict[str, Provenance] = field(default_factory=dict)
    project_prov: Provenance | None = None
    roles: dict[str, Role] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    issue_types: dict[str, IssueType] = field(default_factory=dict)
    issue_types_defined: bool = False
    workflows: dict[str, Workflow] = field(default_factory=dict)
    boards: dict[str, RawBoard] = field(default_factory=dict)
    automations: dict[str, Automation] = field(default_factory=dict)
    recipe_dirs: dict[str, tuple[str, Provenance]] = field(default_factory=dict)
    preserved: dict[str, PreservedDocument] = field(default_factory=dict)
    agents: set[str] = field(default_factory=set)
    refs: list[PendingRef] = field(default_factory=list)
    intake_refs: list[PendingRef] = field(default_factory=list)
    has_project_file: bool = False


def _allowed(inherit: dict[str, Any], kind: str, key: str) -> bool:
    rule = inherit.get(kind, "all")
    if rule == "all":
        return True
    if rule == "none":
        return False
    return key in rule


def _role(parts: list[RolePart], grants: dict[str, tuple[str, ...]]) -> Role:
    """Unite one layer's declarations of a role; later parts (team.yaml) win per field."""
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update(part.fields)
    name = parts[0].name
    permissions = set(fields.get("permissions", ()))
    inherits = fields.get("inherits")
    if "permissions" not in fields and inherits is None:
        inherits = "member"
    permissions.update(grants.get(name, ()))
    return Role(name=name, description=fields.get("description"), permissions=frozenset(permissions),
                builtin=False, inherits=inherits, prov=parts[-1].prov)


def expand_role_permissions(roles: dict[str, Role]) -> dict[str, Role]:
    """Add inherited permissions (cycles stop where they started)."""
    from dataclasses import replace

    result = {}
    for name, role in roles.items():
        permissions = set(role.permissions)
        seen = {name}
        parent = role.inherits
        while parent and parent not in seen and parent in roles:
            seen.add(parent)
            permissions |= roles[parent].permissions
            parent = roles[parent].inherits
        if role.inherits == "member":
            permissions |= MEMBER_PERMISSIONS
        result[name] = replace(role, permissions=frozenset(permissions))
    return result


def merge_layers(layers: Sequence[LayerConfig]) -> tuple[MergedConfig, list[Diagnostic]]:
    """Merge normalized layers: the first layer defining a key wins the whole element."""
    merged = MergedConfig()
    diags: list[Diagnostic] = []
    if not layers:
        return merged, diags
    merged.model_version = layers[0].model_version
    inherit: dict[str, Any] = {}
    for layer in layers:
        if layer.layer != "bundled" and layer.project is not None and "inherit" in layer.project.settings:
            inherit = layer.project.settings["inherit"]
            break
    top = layers[0]

    def admit(layer: LayerConfig, kind: str, key: str, prov: Provenance) -> bool:
        if layer is top or layer.layer == "bundled" or _allowed(inherit, kind, key):
            return True
        diags.append(Diagnostic("inherit_excluded", "info", f"{kind[:-1].replace('_', ' ')} '{key}' of the "
                                f"{layer.layer.replace('_', ' ')} layer is excluded by project.inherit.", "", prov))
        return False

    defined = {kind: False for kind in BUNDLED_KINDS}
    live_paths: set[tuple[str, str | None]] = set()
    for layer in layers:
        bundled = layer.layer == "bundled"
        if bundled:
            use = {kind: not defined[kind] for kind in BUNDLED_KINDS}
            # Bundled boards only make sense over bundled workflows.
            use["boards"] = use["boards"] and use["workflows"]
        else:
            use = {kind: True for kind in BUNDLED_KINDS}
        if not bundled and layer.project is not None:
            merged.has_project_file = True
            live_paths.add((layer.layer, layer.project.prov.path if layer.project.prov else None))
            if layer.project.also_from:
                live_paths.add((layer.layer, layer.project.also_from))
            if merged.project_prov is None:
                merged.project_prov = layer.project.prov
            for key, value in layer.project.settings.items():
                if key not in merged.project and (layer is top or _allowed(inherit, "project", key)):
                    merged.project[key] = value
                    merged.project_provs[key] = layer.project.provs[key]
        if not bundled:
            parts: dict[str, list[RolePart]] = {}
            for part in (layer.project.roles if layer.project else []) + (layer.team.roles if layer.team else []):
                parts.setdefault(part.name, []).append(part)
            grants = layer.team.grants if layer.team else {}
            for name, role_parts in parts.items():
                if name not in merged.roles and admit(layer, "roles", name, role_parts[0].prov):
                    merged.roles[name] = _role(role_parts, grants)
            if layer.team is not None:
                live_paths.add((layer.layer, layer.team.prov.path if layer.team.prov else None))
                for member in layer.team.members:
                    if member.identity not in merged.members and admit(layer, "members", member.identity, member.prov):
                        merged.members[member.identity] = member
        if use["issue_types"] and layer.issue_types_file and not bundled:
            merged.issue_types_defined = True
        for kind in ("issue_types", "workflows", "boards"):
            if not use[kind]:
                continue
            elements, chosen = getattr(layer, kind), getattr(merged, kind)
            for key, element in elements.items():
                if key not in chosen and admit(layer, kind, key, element.prov):
                    chosen[key] = element
                    live_paths.add((layer.layer, element.prov.path))
            if elements:
                defined[kind] = True
        if bundled and use["workflows"] and layer.project is not None:
            # Bundled workflows refer to the template's own roles.
            for part in layer.project.roles:
                if part.name not in merged.roles:
                    merged.roles[part.name] = _role([part], {})
            live_paths.add((layer.layer, layer.project.prov.path if layer.project.prov else None))
        if bundled:
            if any(use.values()) and any(getattr(layer, kind) for kind, used in use.items() if used):
                used_kinds = [kind.replace("_", " ") for kind, used in use.items() if used and getattr(layer, kind)]
                diags.append(Diagnostic("bundled_fallback", "info", "No configuration layer defines "
                                        + ", ".join(used_kinds) + f"; the bundled template ({layer.prov.record}) "
                                        "supplies them.", "", layer.prov))
            continue
        for key, automation in layer.automations.items():
            if key not in merged.automations and admit(layer, "automations", key, automation.prov):
                merged.automations[key] = automation
                live_paths.add((layer.layer, automation.prov.path))
                if key in layer.recipe_dirs:
                    merged.recipe_dirs[key] = layer.recipe_dirs[key]
        for document in layer.preserved:
            if document.path not in merged.preserved and admit(layer, "preserved", document.path, document.prov):
                merged.preserved[document.path] = document
        merged.agents |= layer.agents
        merged.intake_refs.extend(layer.intake_refs)
    for layer in layers:
        merged.refs.extend(ref for ref in layer.refs if (ref.prov.layer, ref.prov.path) in live_paths)
    roles = builtin_roles()
    for name, role in merged.roles.items():
        roles.setdefault(name, role)
    merged.roles = expand_role_permissions(roles)
    return merged, diags
