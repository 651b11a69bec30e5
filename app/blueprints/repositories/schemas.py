from marshmallow import Schema, fields, validate


class RepositorySchema(Schema):
    project = fields.String(required=True, error_messages={"required": "Choose a project."})
    url = fields.String(required=True, validate=validate.Length(min=1, max=500), error_messages={"required": "Give the repository URL."})
    branch = fields.String(load_default="main", validate=validate.Length(min=1, max=255))
    config_path = fields.String(load_default=".kiket", validate=validate.Length(min=1, max=255))
    token = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class SyncSchema(Schema):
    branch = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=255))


class LayerFileSchema(Schema):
    path = fields.String(required=True, validate=validate.Length(min=1, max=255), error_messages={"required": "Name the file, like project.yaml."})
    yaml_text = fields.String(required=True, validate=validate.Length(max=600_000), error_messages={"required": "Paste the YAML."})
