"""Form parsing shared by the views: marshmallow errors become `Invalid`, as service errors do."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from app.services.errors import Invalid


def load_form(schema: Schema, form) -> dict:
    """Parse a submitted form with a schema, raising `Invalid` with one message per field."""
    values = {key: form.get(key) for key in schema.fields if form.get(key) is not None}
    # PostgreSQL text cannot hold NUL: say so, rather than fail at the INSERT.
    nul = {key: "Text may not contain NUL characters." for key, value in values.items()
           if any("\x00" in str(v) for v in (value if isinstance(value, list) else [value]))}
    if nul:
        raise Invalid(nul)
    try:
        return schema.load(values)
    except ValidationError as error:
        raise Invalid({name: " ".join(msgs) if isinstance(msgs, list) else str(msgs) for name, msgs in error.messages.items()}) from None


def email_field() -> fields.Email:
    return fields.Email(required=True, validate=validate.Length(max=254), error_messages={"required": "Enter your email address."})


def password_field(**kwargs) -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=1024), error_messages={"required": "Enter a password."}, **kwargs)
