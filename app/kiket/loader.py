"""Load a revision: classify files, parse, normalize each layer, merge (§13) and resolve references."""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from app.kiket.automations import normalize_automation_file
from app.kiket.boards import RawBoard, parse_board
from app.kiket.diagnostics import SEVERITIES, Diagnostic, Layer, Provenance, cap_diagnostics
from app.kiket.gcpause import collection_paused
from app.kiket.issue_types import normalize_issue_types
from app.kiket.model import Automation, ConfigRevision, IssueType, PreservedDocument, Source, Workflow
from app.kiket.project import ProjectPart, TeamPart, normalize_project, normalize_team
from app.kiket.reader import FileContext, PendingRef, join
from app.kiket.workflows import normalize_workflow
from app.kiket.yamlload import MAX_FILE_BYTES, parse_yaml

MAX_TREE_BYTES = 8 * 1024 * 1024
MAX_TREE_FILES = 1000
UNSUPPORTED_SECTIONS = frozenset({"agents", "analytics", "dashboards", "intakes", "templates", "issue_templates",
                                  "case_templates", "checks", "evidence", "reports", "policies", "simulations",
                                  "modules"})
# Top-level files of both vocabularies (§16) and the kind each one is.
TOP_FILES = {"project": "project", "workspace": "project", "team": "team", "issue_types": "issue_types",
             "case_types": "issue_types"}
YAML_SUFFIXES = (".yaml", ".yml")
LAYER_ORDER: tuple[Layer, ...] = ("repository", "project_override", "organization_default", "bundled")
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.\d+)?$")


@dataclass(frozen=True)
class LayerInput:
    """Files of a lower layer (project overrides, organization defaults) and the record they came from."""

    layer: Layer
    files: Mapping[str, bytes]
    ref: str | None = None


@dataclass(frozen=True)
class LoadResult:
    """The loaded revision (None when anything is fatal) and every diagnostic."""

    revision: ConfigRevision | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """True when nothing is fatal, so the revision may be activated."""
        return not any(d.severity == "fatal" for d in self.diagnostics)

    @property
    def counts(self) -> dict[str, int]:
        """Number of diagnostics per severity."""
        counts = {severity: 0 for severity in SEVERITIES}
        for diagnostic in self.diagnostics:
            counts[diagnostic.severity] = counts.get(diagnostic.severity, 0) + 1
        return counts

    def summary(self) -> dict[str, int]:
        """Element counts of the revision (zeros when rejected)."""
        revision = self.revision
        if revision is None:
            return {"workflows": 0, "states": 0, "transitions": 0, "boards": 0, "issue_types": 0, "automations": 0}
        return {
            "workflows": len(revision.workflows),
            "states": sum(len(wf.states) for wf in revision.workflows.values()),
            "transitions": sum(len(wf.transitions) for wf in revision.workflows.values()),
            "boards": len(revision.boards),
            "issue_types": len(revision.issue_types),
            "automations": len(revision.automations),
        }


@dataclass
class LayerConfig:
    """Everything one layer defines, before merging."""

    layer: Layer
    prov: Provenance
    model_version: str = "1.0"
    project: ProjectPart | None = None
    workspace: ProjectPart | None = None
    team: TeamPart | None = None
    issue_types: dict[str, IssueType] = field(default_factory=dict)
    issue_types_file: bool = False
    workflows: dict[str, Workflow] = field(default_factory=dict)
    workflow_ids: dict[str, str] = field(default_factory=dict)  # lowercase id -> id, for duplicates
    boards: dict[str, RawBoard] = field(default_factory=dict)
    automations: dict[str, Automation] = field(default_factory=dict)
    recipe_dirs: dict[str, tuple[str, Provenance]] = field(default_factory=dict)
    preserved: list[PreservedDocument] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)
    refs: list[PendingRef] = field(default_factory=list)
    intake_refs: list[PendingRef] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


@dataclass(frozen=True)
class LoadOptions:
    """Facts about the surrounding app the pure core cannot look up itself."""

    project_key: str | None = None
    project_name: str | None = None
    known_users: frozenset[str] | None = None
    installed_extensions: frozenset[str] | None = None
    allow_privileged_grants: bool = False


def classify(rel: str) -> tuple[str, str | None]:
    """(kind, detail) of a path relative to the config directory."""
    parts = rel.split("/")
    name = parts[-1]
    is_yaml = name.endswith(YAML_SUFFIXES)
    stem = name.rsplit(".", 1)[0]
    if len(parts) == 1:
        if is_yaml and stem in TOP_FILES:
            return TOP_FILES[stem], stem
        if is_yaml and stem == "manifest":
            return "preserved", "manifest"
        return ("unknown", None) if is_yaml else ("other", None)
    head = parts[0]
    if head == "workflows":
        if len(parts) == 2 and is_yaml:
            return "workflow", None
        if len(parts) == 4 and parts[2] == "automation_recipes" and is_yaml:
            return "recipe", parts[1]
    elif head in ("automations", "boards") and len(parts) == 2 and is_yaml:
        return ("automation" if head == "automations" else "board"), None
    elif head in UNSUPPORTED_SECTIONS:
        return "preserved", head
    return ("unknown", None) if is_yaml else ("other", None)


def is_config_file(path: str, config_path: str) -> bool:
    """True for a repository file the loader reads or preserves (spec §2, §15): the canonical copy and the source
    view hold these only. Other files of the configuration path (non-YAML outside the preserved sections) are
    reported once (`non_yaml_file`) and neither stored nor shown."""
    if path.startswith("analytics/dbt/"):
        return True
    prefix = config_path.strip("/") + "/"
    return path.startswith(prefix) and len(path) > len(prefix) and classify(path[len(prefix):])[0] != "other"


def parse_model_version(ctx: FileContext, interpreted: bool) -> str | None:
    """`"<major>.<minor>"` of a file; None when its major is unsupported (fatal reported)."""
    data = ctx.doc.data
    if not isinstance(data, dict) or data.get("model_version") is None:
        return "1.0"
    raw = data["model_version"]
    match = _VERSION.match(str(raw).strip()) if isinstance(raw, (str, int, float)) and not isinstance(raw, bool) \
        else None
    if not match:
        ctx.diag("invalid_model_version", f"model_version {raw!r} is not a version number; 1.0 is assumed.",
                 "Write `model_version: \"1.0\"`.", "/model_version")
        return "1.0"
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    version = f"{major}.{minor}"
    if major == 1:
        return version
    if major == 2:
        ctx.diag("newer_model_version", f"model_version {version} is newer than this server's 1.x; the file is read by"
                 " the 1.x rules and new blocks are kept unused.", "Check the result, or use model_version 1.0.",
                 "/model_version")
        return version
    if interpreted:
        ctx.diag("unsupported_model_version", f"model_version {version} is not supported (this server reads 1.x and"
                 " 2.x).", "Use model_version \"1.0\".", "/model_version")
        return None
    return version


def _base_prov(layer: Layer, source: Source | None, ref: str | None) -> Provenance:
    if layer == "repository" and source is not None:
        return Provenance(layer=layer, repo=source.repo, branch=source.branch, commit_sha=source.commit_sha)
    return Provenance(layer=layer, record=ref)


def normalize_layer(layer: Layer, files: Mapping[str, bytes], base: Provenance, config_path: str,
                    options: LoadOptions, require_config: bool) -> LayerConfig:
    """Parse and normalize every file of one layer."""
    result = LayerConfig(layer=layer, prov=base)
    diags = result.diagnostics
    prefix = config_path.strip("/") + "/"
    selected: list[tuple[str, str, bytes]] = []
    for path in sorted(files):
        if path.startswith(prefix):
            selected.append((path, path[len(prefix):], files[path]))
        elif path.startswith("analytics/dbt/"):
            selected.append((path, "", files[path]))
    if require_config and not any(rel for _, rel, _ in selected):
        diags.append(Diagnostic("missing_config_dir", "fatal", f"The revision has no {config_path}/ directory "
                                "(or it is empty).", f"Add a {config_path}/ directory with at least one workflow.",
                                base.at(pointer="")))
        return result
    total = sum(len(data) for _, _, data in selected)
    if len(selected) > MAX_TREE_FILES:
        diags.append(Diagnostic("too_many_files", "fatal", f"The configuration has {len(selected)} files; the limit "
                                f"is {MAX_TREE_FILES}.", "Remove files you do not need.", base))
        return result
    if total > MAX_TREE_BYTES:
        diags.append(Diagnostic("tree_too_large", "fatal", f"The configuration is {total // 1024} KiB; the limit is "
                                "8 MiB.", "Remove large files.", base))
        return result
    interpreted_stems: dict[str, str] = {}
    for path, rel, data in selected:
        kind, detail = classify(rel) if rel else ("preserved", "analytics")
        prov = base.in_file(path)
        if kind in ("project", "team", "issue_types", "workflow", "recipe", "automation", "board"):
            stem = path.rsplit(".", 1)[0]
            if stem in interpreted_stems:
                diags.append(Diagnostic("duplicate_file", "fatal", f"Both {interpreted_stems[stem]} and {path} "
                                        "exist; they would define the same element.", "Delete one of them.", prov))
                continue
            interpreted_stems[stem] = path
        if kind == "other":
            if len(data) > MAX_FILE_BYTES:
                diags.append(Diagnostic("file_too_large", "fatal", f"{path} is {len(data) // 1024} KiB; the limit is"
                                        " 512 KiB per file.", "Remove or shrink it.", prov))
            else:
                diags.append(Diagnostic("non_yaml_file", "info", f"{path} is not a YAML file; it is neither read nor stored.",
                                        "", prov))
            continue
        if kind in ("preserved", "unknown"):
            _preserve(result, path, data, prov, detail, kind)
            continue
        doc = parse_yaml(data, path, prov, interpreted=True)
        diags.extend(doc.diagnostics)
        if not doc.ok:
            continue
        ctx = FileContext(doc, prov, allow_privileged=options.allow_privileged_grants)
        version = parse_model_version(ctx, True)
        if version is not None:
            if version > result.model_version:
                result.model_version = version
            _normalize_file(result, ctx, kind, detail, version, options)
        diags.extend(_one_vocabulary_note(ctx.diagnostics))
        result.refs.extend(ctx.refs)
    if result.workspace is not None:
        if result.project is None:
            result.project, result.workspace = result.workspace, None
        else:
            _merge_workspace(result)
    return result


def _one_vocabulary_note(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """At most one `case_vocabulary` per file: the first use is enough to explain the rest."""
    seen = False
    kept = []
    for diagnostic in diagnostics:
        if diagnostic.code == "case_vocabulary":
            if seen:
                continue
            seen = True
        kept.append(diagnostic)
    return kept


def _merge_workspace(result: LayerConfig) -> None:
    """project.yaml and workspace.yaml both present: project.yaml wins key by key and role by role (§16)."""
    project, workspace = result.project, result.workspace
    assert project is not None and workspace is not None
    shadowed = [key for key in workspace.settings if key in project.settings]
    for key, value in workspace.settings.items():
        if key not in project.settings:
            project.settings[key] = value
            project.provs[key] = workspace.provs[key]
    names = {part.name for part in project.roles}
    shadowed += [f"role {part.name}" for part in workspace.roles if part.name in names]
    project.roles = project.roles + [part for part in workspace.roles if part.name not in names]
    project.also_from = workspace.prov.path if workspace.prov else None
    project_path = project.prov.path if project.prov else "project.yaml"
    workspace_path = workspace.prov.path if workspace.prov else "workspace.yaml"
    detail = f"; from {workspace_path}, {', '.join(shadowed)} is ignored" if shadowed else ""
    result.diagnostics.append(Diagnostic(
        "duplicate_project_file", "warning", f"Both {project_path} and {workspace_path} exist: {project_path} wins "
        f"key by key{detail}.", "Keep one of them (workspace.yaml is the newer name of project.yaml).",
        (workspace.prov or Provenance()).at(line=1, column=1, pointer="")))
    result.workspace = None


def _normalize_file(result: LayerConfig, ctx: FileContext, kind: str, detail: str | None, version: str,
                    options: LoadOptions) -> None:
    if kind == "project":
        if detail == "workspace":
            ctx.vocabulary("", "workspace.yaml")
            result.workspace = normalize_project(ctx, options.project_key, options.project_name)
        else:
            result.project = normalize_project(ctx, options.project_key, options.project_name)
    elif kind == "team":
        result.team = normalize_team(ctx, options.known_users)
    elif kind == "issue_types":
        if detail == "case_types":
            ctx.vocabulary("", "case_types.yaml")
        result.issue_types_file = True
        # issue_types.yaml and case_types.yaml may both exist: their keys share one namespace.
        seen = {key.lower(): key for key in result.issue_types}
        for itype in normalize_issue_types(ctx):
            if itype.key.lower() in seen:
                other = result.issue_types.get(seen[itype.key.lower()])
                where = f" in {other.prov.path}" if other is not None and other.prov.path != ctx.path else ""
                ctx.diag("duplicate_issue_type", f"Issue type '{itype.key}' is declared twice (also as "
                         f"'{seen[itype.key.lower()]}'{where}).", "Issue type keys must differ, also in letter case.",
                         itype.prov.pointer)
                continue
            seen[itype.key.lower()] = itype.key
            result.issue_types[itype.key] = itype
    elif kind == "workflow":
        workflow = normalize_workflow(ctx, version)
        if workflow is not None:
            clash = result.workflow_ids.get(workflow.id.lower())
            if clash is not None:
                ctx.diag("duplicate_workflow", f"Workflow '{workflow.id}' is defined twice (also in "
                         f"{result.workflows[clash].prov.path}).", "Give each workflow its own id.", "")
            else:
                result.workflows[workflow.id] = workflow
                result.workflow_ids[workflow.id.lower()] = workflow.id
    elif kind in ("automation", "recipe"):
        scope = "project" if kind == "automation" else f"@dir:{detail}"
        for automation in normalize_automation_file(ctx, scope, kind == "recipe"):
            if automation.id in result.automations:
                ctx.diag("duplicate_automation", f"Automation '{automation.id}' is already defined in "
                         f"{result.automations[automation.id].prov.path}; this one is dropped.",
                         "Give each automation its own id.", automation.prov.pointer)
                continue
            result.automations[automation.id] = automation
            if kind == "recipe":
                result.recipe_dirs[automation.id] = (detail or "", automation.prov)
    elif kind == "board":
        board = parse_board(ctx)
        if board is not None:
            if board.id in result.boards:
                ctx.diag("duplicate_board", f"Board '{board.id}' is already defined in "
                         f"{result.boards[board.id].prov.path}; this one is dropped.", "Give each board its own id.",
                         "")
            else:
                result.boards[board.id] = board


def _preserve(result: LayerConfig, path: str, data: bytes, prov: Provenance, section: str | None, kind: str) -> None:
    diags = result.diagnostics
    is_yaml = path.endswith(YAML_SUFFIXES)
    text = data.decode("utf-8", errors="replace")
    parsed = None
    ctx = None
    if len(data) > MAX_FILE_BYTES:
        diags.append(Diagnostic("file_too_large", "fatal", f"{path} is {len(data) // 1024} KiB; the limit is 512 KiB "
                                "per file.", "Remove or shrink it.", prov))
        return
    if is_yaml:
        doc = parse_yaml(data, path, prov, interpreted=False, require_mapping=False)
        diags.extend(doc.diagnostics)
        if doc.ok:
            parsed = doc.data
            ctx = FileContext(doc, prov)
    if kind == "unknown":
        diags.append(Diagnostic("unknown_file", "warning", f"{path} is not a file Kiket interprets; it is kept as is.",
                                "Move it to the right directory (workflows/, boards/, automations/) or remove it.",
                                prov.at(line=1, column=1)))
        section = "unknown"
    else:
        label = "analytics/dbt" if path.startswith("analytics/dbt/") else section
        diags.append(Diagnostic("unsupported_section", "warning", f"{path}: the '{label}' section is not supported "
                                "yet; it is preserved, listed read-only and never executed.", "",
                                prov.at(line=1, column=1)))
    result.preserved.append(PreservedDocument(section=section or "unknown", path=path, raw_text=text, data=parsed,
                                              prov=prov))
    if ctx is None or not isinstance(parsed, dict):
        return
    if section == "agents":
        agent = parsed.get("agent") if isinstance(parsed.get("agent"), dict) else parsed
        if isinstance(agent.get("id"), str):
            result.agents.add(agent["id"])
    elif section == "intakes":
        _intake_refs(result, ctx, parsed)


def _intake_refs(result: LayerConfig, ctx: FileContext, data: dict) -> None:
    """Intakes stay unsupported, but their issue type references are checked (scrum's `bug` for `Bug`)."""
    for root in ("intake_form", "intake"):
        node = data.get(root)
        if not isinstance(node, dict):
            continue
        settings = node.get("settings")
        if isinstance(settings, dict):
            for key in ("default_issue_type", "default_case_type"):
                if isinstance(settings.get(key), str):
                    result.intake_refs.append(PendingRef("issue_type", settings[key],
                                                         ctx.locate(join("", root, "settings", key)), "intake"))
        for block in ("issue", "case"):
            issue = node.get(block)
            if not isinstance(issue, dict):
                continue
            for key in ("type", "issue_type", "case_type"):
                if isinstance(issue.get(key), str):
                    result.intake_refs.append(PendingRef("issue_type", issue[key],
                                                         ctx.locate(join("", root, block, key)), "intake"))
            if isinstance(issue.get("workflow"), str):
                result.intake_refs.append(PendingRef("workflow", issue["workflow"],
                                                     ctx.locate(join("", root, block, "workflow")), "intake"))


def clear_memos() -> None:
    """Forget what loading remembers across files (lines read, templates, durations, field paths); the
    bundled layers stay. For measuring a cold load: each memo is bounded, so nothing else needs this."""
    from app.kiket.conditions import _normalize_text
    from app.kiket.durations import _parse_text
    from app.kiket.templating import _template_parts
    from app.kiket.yamlfast import clear_memo

    clear_memo()
    _template_parts.cache_clear()
    _parse_text.cache_clear()
    _normalize_text.cache_clear()


@lru_cache(maxsize=8)
def _bundled_layer(key: str) -> LayerConfig:
    """The bundled templates never change at runtime; normalize each once (merge only reads layers)."""
    from app.kiket.bundled import template_files

    return normalize_layer("bundled", template_files(key), _base_prov("bundled", None, f"template:{key}"), ".kiket",
                           LoadOptions(), require_config=False)


@collection_paused
def load_revision(
    files: Mapping[str, bytes],
    *,
    source: Source | None = None,
    lower_layers: Sequence[LayerInput] = (),
    config_path: str = ".kiket",
    include_bundled: bool = True,
    bundled_template: str = "kanban",
    project_key: str | None = None,
    project_name: str | None = None,
    known_users: frozenset[str] | None = None,
    installed_extensions: frozenset[str] | None = None,
    allow_privileged_grants: bool = False,
    skipped: Sequence[tuple[str, str]] = (),
) -> LoadResult:
    """Load one revision from file bytes: parse, normalize, merge layers and resolve; never raises on bad input."""
    from app.kiket.merge import merge_layers
    from app.kiket.resolve import resolve_revision

    options = LoadOptions(project_key=project_key, project_name=project_name, known_users=known_users,
                          installed_extensions=installed_extensions, allow_privileged_grants=allow_privileged_grants)
    source = source or Source()
    diagnostics: list[Diagnostic] = []
    for path, why in skipped:
        prov = replace(_base_prov("repository", source, None), path=path, line=1, column=1)
        if why == "too_large":
            diagnostics.append(Diagnostic("file_too_large", "fatal", f"{path} was not read: it would exceed the limits"
                                          " of 512 KiB per file, 8 MiB and 1000 files per tree.",
                                          "Remove large or unneeded files from the configuration.", prov))
            continue
        code = "submodule_skipped" if why == "submodule" else "symlink_skipped"
        diagnostics.append(Diagnostic(code, "warning", f"{path} is a {why}; it is skipped (links and submodules are "
                                      "never followed).", "Commit the file itself instead.", prov))
    try:
        layers = [normalize_layer("repository", files, _base_prov("repository", source, None), config_path, options,
                                  require_config=True)]
        ordered = sorted(lower_layers, key=lambda item: LAYER_ORDER.index(item.layer))
        for item in ordered:
            layers.append(normalize_layer(item.layer, item.files, _base_prov(item.layer, None, item.ref), ".kiket",
                                          options, require_config=False))
        if include_bundled:
            layers.append(_bundled_layer(bundled_template))
        for layer in layers:
            # The bundled templates are tested clean; only real breakage there is worth showing.
            diagnostics.extend(d for d in layer.diagnostics
                               if layer.layer != "bundled" or d.severity in ("fatal", "error"))
        merged, merge_diags = merge_layers(layers)
        diagnostics.extend(merge_diags)
        revision, resolve_diags = resolve_revision(merged, source, options)
        diagnostics.extend(resolve_diags)
    except Exception as exc:  # noqa: BLE001 - the loader must report, never crash a sync
        diagnostics.append(Diagnostic("internal_error", "fatal", f"The loader failed unexpectedly ({exc.__class__.__name__}:"
                                      f" {exc}); the revision is rejected.", "Report this with the file that caused it.",
                                      Provenance(layer="repository")))
        return LoadResult(None, _ordered(diagnostics, config_path))
    final = _ordered(diagnostics, config_path)
    if any(d.severity == "fatal" for d in final):
        return LoadResult(None, final)
    return LoadResult(replace(revision, diagnostics=final), final)


def _with_position(diagnostic: Diagnostic, config_path: str) -> Diagnostic:
    """File-level problems point at line 1, column 1 so every diagnostic has a full position."""
    prov = diagnostic.prov
    if prov.path is not None and prov.line is not None and prov.column is not None:
        return diagnostic
    prov = replace(prov, path=prov.path or config_path, line=prov.line or 1, column=prov.column or 1)
    return replace(diagnostic, prov=prov)


def _ordered(diagnostics: list[Diagnostic], config_path: str) -> tuple[Diagnostic, ...]:
    """Compiler order: by file, then line and column."""
    positioned = [_with_position(d, config_path) for d in diagnostics]
    ordered = tuple(sorted(positioned, key=lambda d: (d.prov.path or "", d.prov.line or 0, d.prov.column or 0)))
    return cap_diagnostics(ordered, Provenance(path=config_path, line=1, column=1))
