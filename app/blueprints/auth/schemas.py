from marshmallow import Schema, fields, validate

from app.blueprints.forms import email_field, password_field


class SignupSchema(Schema):
    email = email_field()
    name = fields.String(load_default="", validate=validate.Length(max=120))
    organization = fields.String(load_default="", validate=validate.Length(max=120))
    password = password_field()


class LoginSchema(Schema):
    email = email_field()
    password = password_field()
    next = fields.String(load_default="")


class JoinSchema(Schema):
    email = email_field()
    name = fields.String(load_default="", validate=validate.Length(max=120))
    password = password_field()


class PasswordSchema(Schema):
    current_password = password_field()
    new_password = password_field()
