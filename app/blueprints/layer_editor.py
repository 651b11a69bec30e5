"""The editor of a lower configuration layer, shared by project overrides and organization defaults.

Each layer lists its files, opens one to edit, creates and deletes them; the text is validated on the server as
it is typed (the same check a save runs) and a save that would break the configuration is refused with the text
kept. The blueprints own the routes and pass a `LayerEditor` naming the layer and its endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints.forms import load_form
from app.blueprints.repositories.schemas import LayerFileSchema
from app.htmx import is_htmx, render_view
from app.models import Project
from app.services.errors import Invalid
from app.services.sync import layers


@dataclass
class LayerEditor:
    """One layer as the editor sees it: its project (overrides) or organization (defaults), names and endpoints.

    `endpoint` is the prefix of the layer's routes (`projects.override`, `admin.default`): `<prefix>_new`,
    `<prefix>_edit`, `<prefix>_save`… each taking `args` (the project key, or nothing).
    """

    title: str
    endpoint: str
    back_endpoint: str
    project: Project | None = None
    organization_id: int | None = None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def scope(self) -> dict[str, Any]:
        return {"project": self.project} if self.project is not None else {"organization_id": self.organization_id}

    @property
    def effect(self) -> str:
        if self.project is not None:
            return f"{self.project.key}'s configuration"
        return "every project's configuration (below its repository and overrides)"

    def url(self, action: str, **values) -> str:
        return url_for(f"{self.endpoint}_{action}", **self.args, **values)

    @property
    def back_url(self) -> str:
        return url_for(self.back_endpoint, **self.args)


def listing(editor: LayerEditor) -> dict[str, Any]:
    """Template context of a layer's file list (the `_layer_editor.html` card)."""
    return {
        "layer": editor,
        "layer_infos": layers.layer_file_infos(**editor.scope),
        "can_manage": layers.can_edit(current_user, **editor.scope),
        "deleted": request.args.get("deleted"),
    }


def _page(editor: LayerEditor, status: int = 200, *, path: str = "", text: str = "", new: bool = False,
          problems: dict | None = None, result: layers.LayerSaveResult | None = None,
          diagnostics: list | None = None, headers: dict | None = None, created: bool = False,
          version: str | None = None):
    response = render_view(
        "layers/file.html", "layers/_file_editor.html", status=status, layer=editor, path=path, text=text, new=new,
        problems=problems or {}, result=result, created=created, version=version,
        diagnostics=diagnostics if diagnostics is not None else (result.diagnostics if result else []),
    )
    response.headers.update(headers or {})
    return response


def new_file(editor: LayerEditor):
    """An empty editor for a new file of the layer."""
    layers.check_permission(current_user, **editor.scope)
    return _page(editor, path=request.args.get("path", ""), new=True)


def edit_file(editor: LayerEditor, path: str):
    """The editor of one stored file, with the diagnostics it has now."""
    row = layers.get_layer_file(current_user, path, **editor.scope)
    check = layers.check_layer_file(current_user, row.path, row.yaml_text, **editor.scope)
    return _page(editor, path=row.path, text=row.yaml_text, diagnostics=check.diagnostics, version=str(row.version))


def validate_file(editor: LayerEditor):
    """The live diagnostics of the typed text: the same check as a save, nothing saved (HTMX fragment)."""
    path, text = request.form.get("path", ""), request.form.get("yaml_text", "")
    problems: dict[str, str] = {}
    diagnostics: list = []
    try:
        data = load_form(LayerFileSchema(), request.form)
        path = layers.normalize_path(data["path"])
        if request.form.get("new") and layers.file_exists(path, **editor.scope):
            problems["path"] = _exists(path)
        diagnostics = layers.check_layer_file(current_user, path, data["yaml_text"], **editor.scope).diagnostics
    except Invalid as error:
        problems.update(error.problems)
    return render_template("layers/_live_diagnostics.html", layer=editor, path=path, text=text,
                           problems=problems, diagnostics=diagnostics, checked=True)


def _exists(path: str) -> str:
    return f"{path} already exists in this layer; open it from the list to edit it."


def save_file(editor: LayerEditor):
    """Save the typed text; refused (422) with the same diagnostics and the text kept when it would break."""
    new = bool(request.form.get("new"))
    path, text = request.form.get("path", ""), request.form.get("yaml_text", "")
    version = request.form.get("version", "")
    try:
        data = load_form(LayerFileSchema(), request.form)
        path = layers.normalize_path(data["path"])
        result = layers.save_layer_file(current_user, path, data["yaml_text"], create=new,
                                        expected_version=int(version) if version.isdigit() else None, **editor.scope)
    except Invalid as error:
        layers.check_permission(current_user, **editor.scope)
        return _page(editor, 422, path=path, text=text, new=new, problems=error.problems,
                     version=version if version.isdigit() else None)
    if not result.saved:
        return _page(editor, 422, path=path, text=text, new=new, result=result, version=version)
    headers = {"HX-Push-Url": editor.url("edit", path=path)} if new and is_htmx() else None
    return _page(editor, path=path, text=text, result=result, headers=headers, created=new,
                 version=str(result.layer.version))


def delete_file(editor: LayerEditor, path: str):
    """GET: ask to confirm. POST: delete, unless the layer without the file would not load (422, it stays)."""
    row = layers.get_layer_file(current_user, path, **editor.scope)
    info = next((i for i in layers.layer_file_infos(**editor.scope) if i.path == row.path), None)
    if request.method == "GET":
        return render_template("layers/delete.html", layer=editor, path=row.path, info=info, result=None)
    result = layers.delete_layer_file(current_user, row.path, **editor.scope)
    if not result.saved:
        return render_template("layers/delete.html", layer=editor, path=path, info=info, result=result), 422
    return redirect(url_for(editor.back_endpoint, **editor.args, deleted=path) + "#layer-editor", 303)
