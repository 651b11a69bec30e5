"""`project.yaml` (spec §5) and `team.yaml` (spec §6): settings, roles, members, seed issues."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.kiket.calendar import BusinessHours
from app.kiket.diagnostics import Provenance
from app.kiket.model import Member, Role, SeedIssue
from app.kiket.reader import FileContext, join, type_name

PERMISSIONS = frozenset({
    "project.read", "project.admin", "config.sync", "issue.read", "issue.create", "issue.update", "issue.delete",
    "issue.transition", "issue.assign", "issue.comment", "issue.approve", "board.read", "board.manage",
    "automation.manage", "webhook.manage", "issue.*", "*",
})
MEMBER_PERMISSIONS = frozenset({"project.read", "board.read", "issue.read", "issue.create", "issue.update",
                                "issue.transition", "issue.assign", "issue.comment", "issue.approve"})
BUILTIN_ROLES = {
    "owner": ("Project owner", frozenset({"*"})),
    "admin": ("Project administrator", frozenset({"*"})),
    "member": ("Project member", MEMBER_PERMISSIONS),
    "viewer": ("Read-only access", frozenset({"project.read", "issue.read", "board.read"})),
}
PRIVILEGED = frozenset({"owner", "admin", "project.admin", "*"})
INHERIT_KINDS = frozenset({"workflows", "issue_types", "boards", "automations", "roles", "members", "preserved",
                           "project"})
PROJECT_KEYS = frozenset({"key", "id", "name", "description", "version", "team", "extensions", "seed_data",
                          "default_workflow", "business_hours", "priorities", "inherit"})
SEED_KEYS = frozenset({"title", "description", "issue_type", "case_type", "type", "status", "state", "priority",
                       "labels", "assignee", "custom_fields", "fields", "workflow"})


@dataclass
class RolePart:
    """A role as one file declares it: only the fields that file sets."""

    name: str
    prov: Provenance
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProjectPart:
    """Project settings one layer sets (merged per top-level key across layers, §13)."""

    settings: dict[str, Any] = field(default_factory=dict)
    provs: dict[str, Provenance] = field(default_factory=dict)
    roles: list[RolePart] = field(default_factory=list)
    prov: Provenance | None = None
    # workspace.yaml merged under project.yaml (§16): its references count too.
    also_from: str | None = None


@dataclass
class TeamPart:
    """Roles, members and extra grants from team.yaml."""

    roles: list[RolePart] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prov: Provenance | None = None


def builtin_roles() -> dict[str, Role]:
    """The four built-in roles (§6)."""
    return {name: Role(name=name, description=desc, permissions=perms, builtin=True,
                       prov=Provenance(layer="bundled", generated=True, derived_from="builtin"))
            for name, (desc, perms) in BUILTIN_ROLES.items()}


def normalize_project(ctx: FileContext, db_key: str | None, db_name: str | None = None) -> ProjectPart:
    """Normalize project.yaml (or workspace.yaml, §16) into the settings it sets."""
    data = ctx.doc.data
    part = ProjectPart(prov=ctx.locate(""))
    root, root_ptr = ctx.pick(data, "", "project", "workspace")
    if isinstance(root, dict):
        if root_ptr == "/workspace":
            ctx.vocabulary(root_ptr, "workspace")
        ctx.extra(data, "", {"model_version", "project", "workspace"}, ctx.stem + ".yaml")
        node, base = root, root_ptr
    else:
        ctx.diag("project_flat", f"{ctx.stem}.yaml has no `{ctx.stem}:` root; the whole file is read as the project.",
                 f"Put the settings under `{ctx.stem}:`.", "")
        node, base = {k: v for k, v in data.items() if k != "model_version"}, ""
    part.prov = ctx.locate(base)
    ctx.extra(node, base, PROJECT_KEYS, "the project")

    def put(name: str, value: Any, pointer: str) -> None:
        part.settings[name] = value
        part.provs[name] = ctx.locate(pointer)

    if node.get("key") is not None:
        key = ctx.text(node["key"], join(base, "key"), "The project key")
        if key:
            put("key", key, join(base, "key"))
    elif node.get("id") is not None:
        key = ctx.text(node["id"], join(base, "id"), "The project id")
        if key:
            ctx.diag("project_legacy_id", f"{ctx.stem}.yaml uses the older `id: {key}`; it is read as "
                     f"`key: {key.upper()}`.", f"Write `key: {key.upper()}`.", join(base, "id"))
            put("key", key.upper(), join(base, "id"))
    if db_key and part.settings.get("key") and part.settings["key"] != db_key:
        ctx.diag("project_key_mismatch", f"The file's key is '{part.settings['key']}' but the project's key is "
                 f"'{db_key}'; the project keeps '{db_key}'.", "Change the key in the app, or align the file.",
                 part.provs["key"].pointer)
    for name in ("name", "description", "version"):
        if node.get(name) is not None:
            value = ctx.text(node[name], join(base, name), f"The project {name}")
            if value is not None:
                put(name, value, join(base, name))
    if db_name and part.settings.get("name") and part.settings["name"].strip() != db_name.strip():
        ctx.diag("project_name_mismatch", f"The file names the project '{part.settings['name']}' but the project is "
                 f"called '{db_name}' in the app; the name stays '{db_name}'.",
                 "Rename the project in its settings, or align the file.", join(base, "name"))
    extensions = ctx.mapping(node.get("extensions"), join(base, "extensions"), "extensions")
    if extensions is not None:
        ctx.extra(extensions, join(base, "extensions"), {"required", "optional"}, "extensions")
        put("extensions_required", ctx.strings(extensions.get("required"), join(base, "extensions", "required"),
                                               "required extensions"), join(base, "extensions", "required"))
        put("extensions_optional", ctx.strings(extensions.get("optional"), join(base, "extensions", "optional"),
                                               "optional extensions"), join(base, "extensions", "optional"))
    if node.get("default_workflow") is not None:
        value = ctx.text(node["default_workflow"], join(base, "default_workflow"), "default_workflow")
        if value:
            put("default_workflow", value, join(base, "default_workflow"))
    if "business_hours" in node:
        hours, problems = BusinessHours.parse(node["business_hours"])
        for problem in problems:
            ctx.diag("invalid_business_hours", f"business_hours: {problem}.", "See the business_hours format.",
                     join(base, "business_hours"))
        put("business_hours", hours, join(base, "business_hours"))
    if node.get("priorities") is not None:
        priorities = ctx.strings(node["priorities"], join(base, "priorities"), "priorities")
        if priorities:
            put("priorities", priorities, join(base, "priorities"))
    if node.get("inherit") is not None:
        put("inherit", _inherit(ctx, node["inherit"], join(base, "inherit")), join(base, "inherit"))
    team = ctx.mapping(node.get("team"), join(base, "team"), "team")
    if team is not None:
        ctx.extra(team, join(base, "team"), {"roles"}, "the project team")
        part.roles = _roles(ctx, team.get("roles"), join(base, "team", "roles"))
    seed = ctx.mapping(node.get("seed_data"), join(base, "seed_data"), "seed_data")
    if seed is not None:
        ctx.extra(seed, join(base, "seed_data"), {"issues", "cases"}, "seed_data")
        seeds = []
        # `cases` (§16) and `issues` may both be given: every entry is a seed issue.
        for list_key in ("issues", "cases"):
            if list_key == "cases" and "cases" in seed:
                ctx.vocabulary(join(base, "seed_data", "cases"), "seed_data.cases")
            entries = ctx.listing(seed.get(list_key), join(base, "seed_data", list_key), list_key)
            for index, item in enumerate(entries):
                parsed = _seed(ctx, item, join(base, "seed_data", list_key, index))
                if parsed:
                    seeds.append(parsed)
        seed_ptr = join(base, "seed_data", "issues" if "issues" in seed or "cases" not in seed else "cases")
        put("seed_issues", tuple(seeds), seed_ptr)
    return part


def _inherit(ctx: FileContext, node: Any, ptr: str) -> dict[str, Any]:
    if node in ("all", "none"):
        return {kind: node for kind in INHERIT_KINDS}
    if not isinstance(node, dict):
        ctx.diag("invalid_value", f"inherit should be all, none or a mapping per kind, not {type_name(node)}; all is used.",
                 "Write e.g. `inherit: {workflows: none, roles: [auditor]}`.", ptr)
        return {}
    result: dict[str, Any] = {}
    for kind, value in node.items():
        if kind not in INHERIT_KINDS:
            ctx.diag("unknown_key", f"inherit names '{kind}', which is not an element kind; ignored.",
                     "Use " + ", ".join(sorted(INHERIT_KINDS)) + ".", join(ptr, kind))
        elif value in ("all", "none"):
            result[kind] = value
        elif isinstance(value, list):
            result[kind] = tuple(str(v) for v in value)
        else:
            ctx.diag("invalid_value", f"inherit.{kind} should be all, none or a list of keys; all is used.",
                     "Write e.g. `roles: [auditor]`.", join(ptr, kind))
    return result


def _seed(ctx: FileContext, node: Any, ptr: str) -> SeedIssue | None:
    if not isinstance(node, dict) or not isinstance(node.get("title"), str) or not node["title"].strip():
        ctx.diag("invalid_seed_issue", "A seed issue needs a `title`; it is skipped.", "Add `title:`.", ptr)
        return None
    ctx.extra(node, ptr, SEED_KEYS, "the seed issue")
    custom_value, custom_ptr = ctx.pick(node, ptr, "custom_fields", "fields")
    custom = ctx.mapping(custom_value, custom_ptr, "custom_fields") or {}
    type_value, type_ptr = ctx.pick(node, ptr, "issue_type", "case_type", "type")
    if type_ptr.endswith("/case_type"):
        ctx.vocabulary(type_ptr, "case_type")
    status_value, status_ptr = ctx.pick(node, ptr, "status", "state")
    return SeedIssue(
        title=node["title"], issue_type=ctx.text(type_value, type_ptr, "issue_type"),
        description=ctx.text(node.get("description"), join(ptr, "description"), "description"),
        status=ctx.text(status_value, status_ptr, "status"),
        priority=ctx.text(node.get("priority"), join(ptr, "priority"), "priority"),
        labels=ctx.strings(node.get("labels"), join(ptr, "labels"), "labels"),
        assignee=ctx.text(node.get("assignee"), join(ptr, "assignee"), "assignee"),
        custom_fields=custom, workflow=ctx.text(node.get("workflow"), join(ptr, "workflow"), "workflow"),
        prov=ctx.locate(ptr),
    )


def _roles(ctx: FileContext, node: Any, ptr: str) -> list[RolePart]:
    result = []
    for index, item in enumerate(ctx.listing(node, ptr, "roles")):
        item_ptr = join(ptr, index)
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not item.get("name"):
            ctx.diag("missing_key", "A role needs a `name`; it is dropped.", "Write `- {name: qa}`.", item_ptr)
            continue
        name = ctx.identifier(item["name"], join(item_ptr, "name"), "The role name")
        if name is None:
            continue
        if name in BUILTIN_ROLES:
            ctx.diag("builtin_role_redefined", f"'{name}' is a built-in role and cannot be redefined; this entry is "
                     "dropped.", "Pick another name for your role.", item_ptr)
            continue
        ctx.extra(item, item_ptr, {"name", "description", "inherits", "permissions"}, f"role '{name}'")
        part = RolePart(name, ctx.locate(item_ptr))
        if item.get("description") is not None:
            part.fields["description"] = ctx.text(item["description"], join(item_ptr, "description"), "description")
        if item.get("inherits") is not None:
            inherits = ctx.text(item["inherits"], join(item_ptr, "inherits"), "inherits")
            if inherits in PRIVILEGED and ctx.prov.layer == "repository" and not ctx.allow_privileged:
                ctx.diag("privileged_grant", f"Role '{name}' may not inherit '{inherits}' from the repository: pushing "
                         "to the config repository must not make anyone an administrator; it inherits member.",
                         "Grant it in the app's project settings instead.", join(item_ptr, "inherits"))
            elif inherits:
                part.fields["inherits"] = inherits
                ctx.ref("role", inherits, join(item_ptr, "inherits"), f"role '{name}' inherits")
        if item.get("permissions") is not None:
            part.fields["permissions"] = _permissions(ctx, item["permissions"], join(item_ptr, "permissions"))
        result.append(part)
    return result


def _permissions(ctx: FileContext, node: Any, ptr: str) -> frozenset[str]:
    result = set()
    for index, perm in enumerate(ctx.strings(node, ptr, "permissions")):
        perm_ptr = join(ptr, index) if isinstance(node, list) else ptr
        if perm not in PERMISSIONS:
            ctx.diag("unknown_permission", f"'{perm}' is not a permission; it is ignored.",
                     "Use e.g. issue.transition, issue.approve, board.manage.", perm_ptr)
            continue
        if perm in PRIVILEGED and ctx.prov.layer == "repository" and not ctx.allow_privileged:
            ctx.diag("privileged_grant", f"The repository may not grant '{perm}': pushing to the config repository "
                     "must not make anyone an administrator.", "Grant it in the app's project settings instead.",
                     perm_ptr)
            continue
        result.add(perm)
    return frozenset(result)


def normalize_team(ctx: FileContext, known_users: frozenset[str] | None) -> TeamPart:
    """Normalize team.yaml."""
    data = ctx.doc.data
    part = TeamPart(prov=ctx.locate(""))
    ctx.extra(data, "", {"model_version", "team", "permissions"}, "team.yaml")
    team = ctx.mapping(data.get("team"), "/team", "team") or {}
    if team:
        ctx.extra(team, "/team", {"roles", "members"}, "the team")
    part.roles = _roles(ctx, team.get("roles"), "/team/roles")
    for index, item in enumerate(ctx.listing(team.get("members"), "/team/members", "members")):
        ptr = join("/team/members", index)
        if not isinstance(item, dict):
            item = {"user": item}
        identity = item.get("user", item.get("email", item.get("username")))
        if not isinstance(identity, str) or not identity:
            ctx.diag("missing_key", "A member needs `user:` (an email or username); dropped.",
                     "Write `- {user: alice@example.com, roles: [qa]}`.", ptr)
            continue
        if known_users is not None and identity.lower() not in known_users:
            ctx.diag("unknown_member", f"'{identity}' matches no existing account; the entry is ignored.",
                     "Invite the person first, or fix the spelling.", ptr)
            continue
        roles = []
        for r_index, role in enumerate(ctx.strings(item.get("roles"), join(ptr, "roles"), "roles")):
            if role in ("owner", "admin") and ctx.prov.layer == "repository" and not ctx.allow_privileged:
                ctx.diag("privileged_grant", f"The repository may not make '{identity}' {role}.",
                         "Grant it in the app's project settings instead.", join(ptr, "roles", r_index))
                continue
            roles.append(role)
            ctx.ref("role", role, join(ptr, "roles", r_index), "member roles")
        part.members.append(Member(identity=identity, roles=tuple(roles), prov=ctx.locate(ptr)))
    grants = ctx.mapping(data.get("permissions"), "/permissions", "permissions") or {}
    for role, perms in grants.items():
        ctx.ref("role", role, join("/permissions", role), "permissions")
        part.grants[role] = tuple(sorted(_permissions(ctx, perms, join("/permissions", role))))
    return part
