"""Cross-file references after merging (spec Appendix), default workflow (§7) and fallback boards (§11.6)."""

from __future__ import annotations

from dataclasses import replace
from operator import is_
from typing import Any, Callable, Hashable, Mapping

from app.kiket.boards import fallback_board, resolve_board, resolve_issue_type_ref, resolve_workflow_ref
from app.kiket.calendar import BusinessHours
from app.kiket.diagnostics import Diagnostic, Provenance
from app.kiket.filecache import active_cache
from app.kiket.loader import LoadOptions
from app.kiket.merge import MergedConfig
from app.kiket.conditions import All, Any as AnyOf, Compare, Not, UNARY_OPERATORS, normalize_path
from app.kiket.model import (
    Action, ApprovalPolicy, Approver, Board, ConfigRevision, FieldDef, IssueType, Project, SeedIssue, Source, Team,
    Transition, Workflow,
)
from app.kiket.reader import humanize, resolve_key
from app.kiket.suggest import did_you_mean, doc_link

# References from gates: a role nobody can hold makes them unsatisfiable (§16).
GATE_ROLE_REFS = frozenset({"approver_role", "transition_role"})


def gate_fields(transition: Transition) -> dict[str, list[Any]]:
    """Custom fields a transition's gates read, with the values they are compared with."""
    found: dict[str, list[Any]] = {}

    def note(path: str | None, values: list[Any]) -> None:
        if path and path.startswith("custom_fields."):
            found.setdefault(path.split(".")[1], []).extend(values)

    for raw in transition.required_fields:
        note(normalize_path(raw), [])
    stack: list[Any] = [transition.guard, transition.required_predicate]
    while stack:
        node = stack.pop()
        if isinstance(node, Compare):
            value = node.value
            values = [] if node.op in UNARY_OPERATORS or value is None else \
                list(value) if isinstance(value, (tuple, list)) else [value]
            note(node.path, values)
        elif isinstance(node, (All, AnyOf)):
            stack.extend(node.items)
        elif isinstance(node, Not):
            stack.append(node.item)
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Reuse:
    """Results of resolving one element, kept in the active FileCache for the next load (a re-sync).

    A result is reused when it was computed from the same objects (files the cache gave back unchanged
    come back as the same objects) and the same values (signatures of the revision's names); the
    diagnostics it reported are replayed in their place. Without an active cache everything is computed.
    """

    def __init__(self, out: list[Diagnostic]) -> None:
        self.cache = active_cache()
        self.out = out

    def signature(self, make: Callable[[], Hashable]) -> Hashable:
        """`make()`, one object per distinct value so that keys holding it compare by identity (None uncached)."""
        if self.cache is None:
            return None
        value = make()
        found = self.cache.recall(("resolve.signature", value))
        if found is None:
            self.cache.put(("resolve.signature", value), value)
            return value
        return found

    def __call__(self, step: str, objects: tuple, values: tuple, compute: Callable[[], Any]) -> Any:
        cache = self.cache
        if cache is None:
            return compute()
        key = (step, *map(id, objects), *values)
        found = cache.recall(key)
        if found is not None and all(map(is_, found[0], objects)):
            self.out.extend(found[2])
            return found[1]
        first = len(self.out)
        result = compute()
        cache.put(key, (objects, result, tuple(self.out[first:])))
        return result


def _workflow_names(workflows: Mapping[str, Workflow]) -> frozenset:
    """What resolving a workflow reference reads: keys and file stems (see boards.resolve_workflow_ref)."""
    return frozenset((key, (wf.prov.path or "").rsplit("/", 1)[-1].rsplit(".", 1)[0]) for key, wf in workflows.items())


def _type_names(types: Mapping[str, IssueType]) -> frozenset:
    """What resolving an issue type reference reads: keys and labels (see boards.resolve_issue_type_ref)."""
    return frozenset((key, itype.label) for key, itype in types.items())


class _Resolver:
    def __init__(self, merged: MergedConfig, options: LoadOptions) -> None:
        self.m = merged
        self.options = options
        self.out: list[Diagnostic] = []
        self.reuse = _Reuse(self.out)

    def diag(self, code: str, severity: str, message: str, hint: str, prov: Provenance) -> None:
        self.out.append(Diagnostic(code, severity, message, hint, prov))  # type: ignore[arg-type]

    def default_workflow(self, workflows: Mapping[str, Workflow]) -> str | None:
        declared = self.m.project.get("default_workflow")
        if declared:
            found, how = resolve_workflow_ref(declared, workflows)
            prov = self.m.project_provs.get("default_workflow", Provenance())
            if found is None:
                self.diag("unknown_workflow", "error", f"default_workflow '{declared}' does not exist; the default is "
                          "inferred instead.", "Name one of: " + ", ".join(workflows) + ".", prov)
            else:
                if how != "exact":
                    self.diag("fuzzy_reference", "warning", f"default_workflow '{declared}' matched '{found}' by {how}.",
                              f"Write '{found}'.", prov)
                return found
        if not workflows:
            return None
        if len(workflows) == 1:
            return next(iter(workflows))
        chosen = min(workflows.values(), key=lambda wf: (wf.prov.path or "", wf.id))
        self.diag("default_workflow_inferred", "info", f"No default_workflow is set: '{chosen.id}' (first by file path)"
                  " is the default for issue types without a workflow.",
                  "Set `default_workflow:` in project.yaml to choose another.", chosen.prov)
        return chosen.id

    def issue_types(self, default: str | None, workflows: Mapping[str, Workflow]) -> dict[str, IssueType]:
        types = dict(self.m.issue_types)
        if not types:
            self.diag("generated_issue_type", "info", "No issue types are defined; a generated type 'task' is used.",
                      "Add .kiket/issue_types.yaml.", Provenance(generated=True, derived_from="default"))
            types = {"task": IssueType(key="task", label="Task", workflow=default,
                                       prov=Provenance(generated=True, derived_from="default"))}
        result = {}
        for key, itype in types.items():
            workflow = default
            if itype.workflow is not None:
                found, how = resolve_workflow_ref(itype.workflow, workflows)
                wprov = itype.workflow_prov or itype.prov
                if found is None:
                    self.diag("unknown_workflow", "error", f"Issue type '{key}' names workflow '{itype.workflow}', which "
                              f"does not exist; it uses the default workflow '{default}'.",
                              "Use one of: " + ", ".join(workflows) + ".", wprov)
                else:
                    if how != "exact":
                        self.diag("fuzzy_reference", "warning", f"Workflow '{itype.workflow}' matched '{found}' by "
                                  f"{how}.", f"Write '{found}'.", wprov)
                    workflow = found

            def related(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
                if names is None:
                    return None
                resolved = (resolve_issue_type_ref(name, types)[0] for name in names)
                return tuple(name for name in resolved if name)

            result[key] = replace(itype, workflow=workflow, child_types=related(itype.child_types),
                                  parent_types=related(itype.parent_types))
        return result

    def check_actions(self, actions: tuple[Action, ...], states: set[str], workflows: Mapping[str, Workflow],
                      types: Mapping[str, IssueType]) -> tuple[Action, ...]:
        kept = []
        for action in actions:
            problem = None
            if action.type == "transition":
                target = action.params.get("to")
                if resolve_key(str(target), states)[0] is None:
                    problem = f"targets state '{target}', which does not exist here"
            elif action.type == "create_issue":
                wf = action.params.get("workflow")
                it = action.params.get("issue_type")
                if isinstance(wf, str) and resolve_workflow_ref(wf, workflows)[0] is None:
                    problem = f"names workflow '{wf}', which does not exist"
                elif isinstance(it, str) and resolve_issue_type_ref(it, types)[0] is None:
                    problem = f"names issue type '{it}', which does not exist"
            if problem:
                self.diag("invalid_action", "error", f"The {action.type} action {problem}; it is dropped.",
                          "Fix the reference or remove the action.", action.prov)
                continue
            kept.append(action)
        return actions if len(kept) == len(actions) and isinstance(actions, tuple) else tuple(kept)

    def workflows(self, workflows: dict[str, Workflow], types: Mapping[str, IssueType]) -> dict[str, Workflow]:
        names = self.reuse.signature(lambda: (_workflow_names(workflows), _type_names(types)))
        return {key: self.reuse("resolve.workflow", (wf,), (names,),
                                lambda wf=wf: self.workflow_actions(wf, workflows, types))
                for key, wf in workflows.items()}

    def workflow_actions(self, wf: Workflow, workflows: Mapping[str, Workflow],
                         types: Mapping[str, IssueType]) -> Workflow:
        """The workflow without its actions whose references do not resolve (each reported)."""
        states_set = set(wf.states)
        states = {}
        changed = False
        for skey, state in wf.states.items():
            hooks = {name: self.check_actions(acts, states_set, workflows, types) for name, acts in state.hooks.items()}
            sla = state.sla
            if sla is not None:
                on_warning = self.check_actions(sla.on_warning, states_set, workflows, types)
                on_breach = self.check_actions(sla.on_breach, states_set, workflows, types)
                if on_warning is not sla.on_warning or on_breach is not sla.on_breach:
                    sla = replace(sla, on_warning=on_warning, on_breach=on_breach)
            if hooks != dict(state.hooks) or sla != state.sla:
                changed = True
                state = replace(state, hooks=hooks, sla=sla)
            states[skey] = state
        transitions = []
        for transition in wf.transitions:
            actions = self.check_actions(transition.actions, states_set, workflows, types)
            if actions != transition.actions:
                changed = True
                transition = replace(transition, actions=actions)
            transitions.append(transition)
        return replace(wf, states=states, transitions=tuple(transitions)) if changed else wf

    def automations(self, workflows: Mapping[str, Workflow], types: Mapping[str, IssueType]) -> dict[str, Any]:
        result = {}
        all_states = frozenset(s for wf in workflows.values() for s in wf.states)
        names = self.reuse.signature(lambda: (_workflow_names(workflows), _type_names(types), all_states))
        for key, automation in self.m.automations.items():
            scope = automation.scope
            if scope.startswith("@dir:"):
                directory, prov = self.m.recipe_dirs.get(key, (scope[5:], automation.prov))
                found, how = resolve_workflow_ref(directory, workflows)
                if found is None:
                    self.diag("unknown_workflow", "error", f"Recipe '{key}' sits in workflows/{directory}/, but no "
                              f"workflow '{directory}' exists; the recipe is dropped.",
                              "Move it under the directory named like its workflow.", prov.at(line=1, column=1,
                                                                                                pointer=""))
                    continue
                if how != "exact":
                    self.diag("fuzzy_reference", "warning", f"Recipe directory '{directory}' matched workflow "
                              f"'{found}' by {how}.", f"Rename the directory to '{found}'.", prov)
                scope = found
            inputs = (automation,) if scope == "project" else (automation, workflows[scope])
            kept = self.reuse("resolve.automation", inputs, (scope, names),
                              lambda key=key, automation=automation, scope=scope: self.automation_actions(
                                  key, automation, scope, all_states, workflows, types))
            if kept is not None:
                result[key] = kept
        return result

    def automation_actions(self, key: str, automation: Any, scope: str, all_states: frozenset,
                           workflows: Mapping[str, Workflow], types: Mapping[str, IssueType]) -> Any:
        """The automation in its resolved scope without its unresolvable actions; None when none is left."""
        states = set(workflows[scope].states) if scope != "project" else all_states
        actions = self.check_actions(automation.actions, states, workflows, types)
        if not actions:
            self.diag("missing_actions", "error", f"Automation '{key}' has no valid actions left; it is dropped.",
                      "Fix its actions.", automation.prov)
            return None
        return replace(automation, scope=scope, actions=actions)

    def refs(self, types: Mapping[str, IssueType], workflows: Mapping[str, Workflow], extensions: set[str]) -> None:
        roles = self.m.roles
        bound_documents: dict[str, set[str]] = {}
        for itype in types.values():
            bound_documents.setdefault(itype.workflow or "", set()).update(d.key for d in itype.documents)
        for ref in self.m.refs:
            if ref.kind in GATE_ROLE_REFS:
                if ref.name not in roles:
                    self.unsatisfiable_role(ref, roles)
            elif ref.kind == "role":
                if ref.name not in roles:
                    self.diag("unknown_role", "warning", f"Role '{ref.name}' ({ref.context}) is neither declared nor "
                              "built in; nobody has it, so it reaches no one.",
                              "Declare it under team.roles in project.yaml or team.yaml.", ref.prov)
            elif ref.kind == "agent":
                if ref.name not in self.m.agents:
                    self.diag("unknown_agent", "warning", f"AI agent '{ref.name}' is not defined in .kiket/agents/; "
                              "the action stays a stub.", "Add the agent file or fix the id.", ref.prov)
            elif ref.kind == "channel":
                if ref.name not in extensions:
                    self.diag("unknown_channel", "warning", f"Channel '{ref.context}' needs the '{ref.name}' extension, "
                              "which is not installed; the notification is skipped.",
                              "Install the extension, or use channel in_app or email.", ref.prov)
            elif ref.kind == "extension":
                if ref.name not in extensions:
                    self.diag("extension_not_installed", "warning", f"Extension '{ref.context}' is not installed; the "
                              "action stays a stub.", "Install the extension.", ref.prov)
            elif ref.kind == "issue_type":
                self.issue_type_ref(ref, types)
            elif ref.kind == "document":
                documents = bound_documents.get(ref.workflow or "", set())
                if ref.name not in documents:
                    self.diag("unknown_required_document", "warning", f"Required document '{ref.name}' of state "
                              f"'{ref.context}' is declared by no issue type of workflow '{ref.workflow}'; it is used "
                              "as an attachment tag.", "Declare it under `documents:` of the issue type.", ref.prov)
        for ref in self.m.intake_refs:
            if ref.kind == "issue_type":
                self.issue_type_ref(ref, types)
            elif ref.kind == "workflow":
                found, how = resolve_workflow_ref(ref.name, workflows)
                if found is None:
                    self.diag("unknown_workflow", "warning", f"The intake names workflow '{ref.name}', which does "
                              "not exist.", "Fix the intake.", ref.prov)
                elif how != "exact":
                    self.diag("fuzzy_reference", "warning", f"Workflow '{ref.name}' matched '{found}' by {how}.",
                              f"Write '{found}'.", ref.prov)

    def unsatisfiable_role(self, ref: Any, roles: Mapping[str, Any]) -> None:
        """A gate naming a role nobody can hold: an error, and the org owners/admins fallback (§16)."""
        guess = did_you_mean(ref.name, [name for name, role in roles.items() if not role.builtin])
        if ref.kind == "approver_role":
            message = (f"Role '{ref.name}' approves {ref.context}, but it is neither declared nor built in: nobody "
                       "holds it, so the approval could never be given. Organization owners and admins decide in its "
                       "place.")
        else:
            message = (f"Only role '{ref.name}' may use {ref.context}, but it is neither declared nor built in: nobody"
                       " holds it. Organization owners and admins pass it.")
        self.diag("unsatisfiable_gate", "error", message,
                  (guess + " " if guess else "") + "Declare the role under team.roles (project.yaml, workspace.yaml or "
                  f"team.yaml) or name a declared one; see {doc_link('unsatisfiable_gate')}.", ref.prov)

    def mark_undeclared(self, workflows: dict[str, Workflow]) -> dict[str, Workflow]:
        """Flag approvers and transition roles that name no role, for the runtime's owner/admin fallback."""
        roles = self.m.roles
        names = self.reuse.signature(lambda: frozenset(roles))
        return {key: self.reuse("resolve.undeclared", (wf,), (names,), lambda wf=wf: _mark_undeclared(wf, roles))
                for key, wf in workflows.items()}

    def infer_fields(self, types: dict[str, IssueType], workflows: Mapping[str, Workflow]) -> dict[str, IssueType]:
        """Gates on custom fields no bound issue type declares: inferred, editable fields so they can pass (§16)."""
        bound_types: dict[str | None, list[str]] = {}
        for key, itype in types.items():
            bound_types.setdefault(itype.workflow, []).append(key)
        for wf in workflows.values():
            bound = bound_types.get(wf.id)
            if not bound:
                continue
            declared = {f.key for key in bound for f in types[key].fields}
            wanted: dict[str, tuple[list[Any], Transition]] = {}
            gates = self.reuse("resolve.gate_fields", (wf,), (), lambda wf=wf: [(t, gate_fields(t))
                                                                                for t in wf.transitions])
            for t, fields in gates:
                for name, values in fields.items():
                    if name not in declared:
                        entry = wanted.setdefault(name, ([], t))
                        entry[0].extend(values)
            for name, (values, first) in wanted.items():
                numeric = bool(values) and all(_is_number(v) for v in values)
                kind = "number" if numeric else "string"
                names = ", ".join(bound)
                self.diag("unsatisfiable_gate", "error", f"Transition '{first.name}' of workflow '{wf.id}' needs custom "
                          f"field '{name}', which no issue type of that workflow ({names}) declares, so nobody could "
                          "set it.", f"Declare '{name}' under `fields:` of the issue type; see "
                          f"{doc_link('unsatisfiable_gate')}.", first.prov)
                self.diag("inferred_field", "info", f"Field '{name}' is added as an editable {kind} field to "
                          f"{names}, so the gate of '{first.name}' can be satisfied.", "", first.prov)
                field_def = FieldDef(key=name, label=humanize(name), type=kind, inferred=True,
                                     prov=replace(first.prov, generated=True, derived_from=f"workflow:{wf.id}"))
                for key in bound:
                    types[key] = replace(types[key], fields=types[key].fields + (field_def,))
        return types

    def issue_type_ref(self, ref: Any, types: Mapping[str, IssueType]) -> str | None:
        found, how = resolve_issue_type_ref(ref.name, types)
        if found is None:
            self.diag("unknown_issue_type", "warning", f"Issue type '{ref.name}' ({ref.context}) does not exist; the "
                      "reference is ignored.", "Use one of: " + ", ".join(types) + ".", ref.prov)
        elif how != "exact":
            self.diag("fuzzy_reference", "warning", f"Issue type '{ref.name}' ({ref.context}) matched '{found}' by "
                      f"{how}.", f"Write '{found}'.", ref.prov)
        return found

    def seeds(self, seeds: tuple[SeedIssue, ...], types: Mapping[str, IssueType], workflows: Mapping[str, Workflow],
              default: str | None, priorities: tuple[str, ...]) -> tuple[SeedIssue, ...]:
        kept = []
        for seed in seeds:
            itype_key = None
            if seed.issue_type is not None:
                found, how = resolve_issue_type_ref(seed.issue_type, types)
                if found is None:
                    self.diag("invalid_seed_issue", "warning", f"Seed issue '{seed.title}' has issue type "
                              f"'{seed.issue_type}', which does not exist; it is skipped.",
                              "Use a key of issue_types.yaml.", seed.prov)
                    continue
                if how != "exact":
                    self.diag("fuzzy_reference", "warning", f"Issue type '{seed.issue_type}' matched '{found}' by {how}.",
                              f"Write '{found}'.", seed.prov)
                itype_key = found
            elif len(types) == 1:
                itype_key = next(iter(types))
            wf_key = types[itype_key].workflow if itype_key else default
            workflow = workflows.get(wf_key) if wf_key else None
            if workflow is None:
                self.diag("invalid_seed_issue", "warning", f"Seed issue '{seed.title}' has no workflow; it is skipped.",
                          "Give it an issue_type bound to a workflow.", seed.prov)
                continue
            status = seed.status
            if status is not None:
                found, how = resolve_key(status, workflow.states)
                if found is None:
                    self.diag("invalid_seed_issue", "warning", f"Seed issue '{seed.title}' has status '{status}', which "
                              f"is not a state of workflow '{workflow.id}'; it is skipped.",
                              "Use one of: " + ", ".join(workflow.states) + ".", seed.prov)
                    continue
                if how != "exact":
                    self.diag("fuzzy_reference", "warning", f"Status '{status}' matched '{found}' by {how}.",
                              f"Write '{found}'.", seed.prov)
                status = found
            else:
                status = workflow.initial
            priority = seed.priority
            if priority is not None:
                found, how = resolve_key(priority, priorities)
                if found is None:
                    self.diag("invalid_seed_issue", "warning", f"Seed issue '{seed.title}' has priority '{priority}', "
                              "which is not a project priority; it is skipped.",
                              "Use one of: " + ", ".join(priorities) + ".", seed.prov)
                    continue
                priority = found
            kept.append(replace(seed, issue_type=itype_key, status=status, priority=priority, workflow=workflow.id))
        return tuple(kept)


def _mark_undeclared(wf: Workflow, roles: Mapping[str, Any]) -> Workflow:
    def policy(p: ApprovalPolicy | None) -> ApprovalPolicy | None:
        if p is None or not any(a.kind == "role" and a.ref not in roles for a in p.all_approvers()):
            return p

        def mark(approvers: tuple[Approver, ...]) -> tuple[Approver, ...]:
            return tuple(replace(a, undeclared=True) if a.kind == "role" and a.ref not in roles else a
                         for a in approvers)

        levels = tuple(replace(level, approvers=mark(level.approvers),
                               groups=tuple(replace(g, approvers=mark(g.approvers)) for g in level.groups))
                       for level in p.levels)
        return replace(p, approvers=mark(p.approvers), levels=levels)

    states = {k: replace(st, approval=policy(st.approval)) if policy(st.approval) is not st.approval else st
              for k, st in wf.states.items()}
    transitions = []
    for t in wf.transitions:
        undeclared = tuple(r for r in t.allowed_roles if r.lstrip("@") not in roles)
        approval = policy(t.approval)
        if undeclared or approval is not t.approval:
            t = replace(t, undeclared_roles=undeclared, approval=approval)
        transitions.append(t)
    return replace(wf, states=states, transitions=tuple(transitions))


def _board_inputs(raw: Any, workflows: Mapping[str, Workflow]) -> tuple:
    """The board file and the workflows resolving it reads (all of them when it names none)."""
    names = [name for name, _ in raw.filter_workflows] + ([raw.workflow[0]] if raw.workflow is not None else [])
    if not names:
        return (raw, *workflows.values())
    return (raw, *(workflows.get(resolve_workflow_ref(name, workflows)[0] or "") for name in names))


def resolve_revision(merged: MergedConfig, source: Source, options: LoadOptions) -> tuple[ConfigRevision, list[Diagnostic]]:
    """Resolve references of a merged configuration into a ConfigRevision."""
    r = _Resolver(merged, options)
    settings = merged.project
    if not merged.has_project_file:
        r.diag("project_missing", "info", "There is no project.yaml: the project's name, key and description come from "
               "the app.", "", Provenance(path=".kiket/project.yaml"))
    default = r.default_workflow(merged.workflows)
    types = r.issue_types(default, merged.workflows)
    workflows = r.mark_undeclared(r.workflows(merged.workflows, types))
    types = r.infer_fields(types, workflows)
    automations = r.automations(workflows, types)
    declared = set(settings.get("extensions_required", ())) | set(settings.get("extensions_optional", ()))
    extensions = set(options.installed_extensions) if options.installed_extensions is not None else declared
    if options.installed_extensions is not None:
        for name in settings.get("extensions_required", ()):
            if name not in options.installed_extensions:
                r.diag("extension_not_installed", "warning", f"The project requires extension '{name}', which is not "
                       "installed; its actions are stubs.", "Install the extension.",
                       merged.project_provs.get("extensions_required", Provenance()))
    r.refs(types, workflows, extensions)
    boards: dict[str, Board] = {}
    names = r.reuse.signature(lambda: (_workflow_names(workflows), _type_names(types)))
    for key, raw in merged.boards.items():
        board = r.reuse("resolve.board", _board_inputs(raw, workflows), (names, default),
                        lambda raw=raw: resolve_board(raw, workflows, types, default, r.out))
        if board is not None:
            boards[key] = board
    shown = {wf for board in boards.values() for wf in board.workflows}
    for key, workflow in workflows.items():
        if key not in shown:
            generated = fallback_board(workflow)
            if generated.id in boards:
                continue
            boards[generated.id] = generated
            r.diag("generated_board", "info", f"Workflow '{key}' is on no board; a board '{generated.id}' with one "
                   "column per state is generated.", "Add a board file to arrange it yourself.", generated.prov)
    priorities = tuple(settings.get("priorities", ("low", "medium", "high", "critical")))
    seeds = r.seeds(tuple(settings.get("seed_issues", ())), types, workflows, default, priorities)
    project = Project(
        key=settings.get("key"), name=settings.get("name"), description=settings.get("description"),
        version=settings.get("version"), extensions_required=tuple(settings.get("extensions_required", ())),
        extensions_optional=tuple(settings.get("extensions_optional", ())),
        business_hours=settings.get("business_hours", BusinessHours()), priorities=priorities, seed_issues=seeds,
        default_workflow=default, inherit=settings.get("inherit", {}),
        prov=merged.project_prov or Provenance(generated=True, derived_from="database project"),
    )
    team = Team(roles=merged.roles, members=tuple(merged.members.values()))
    revision = ConfigRevision(
        source=source, model_version=merged.model_version, project=project, team=team, issue_types=types,
        workflows=workflows, default_workflow=default, boards=boards, automations=automations,
        preserved=tuple(merged.preserved.values()),
    )
    return revision, r.out
