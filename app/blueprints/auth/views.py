"""Sign up, log in, log out, join by invitation, change password."""

from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.blueprints.auth.schemas import JoinSchema, LoginSchema, PasswordSchema, SignupSchema
from app.blueprints.forms import load_form
from app.queue import redis_connection
from app.services import accounts, throttle
from app.services.errors import Invalid
from app.services.sync import people

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would let a link send users elsewhere after log-in."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("projects.index")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if not accounts.installation_is_empty():
        return render_template("auth/signup_closed.html"), 403 if request.method == "POST" else 200
    if request.method == "GET":
        return render_template("auth/signup.html", form={}, problems={})
    try:
        data = load_form(SignupSchema(), request.form)
        user = accounts.sign_up_first_user(data["email"], data["name"], data["password"], data["organization"])
    except Invalid as error:
        return render_template("auth/signup.html", form=request.form, problems=error.problems), 422
    login_user(user)
    return redirect(url_for("projects.index"), 303)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    if accounts.installation_is_empty():
        return redirect(url_for("auth.signup"))
    if request.method == "GET":
        return render_template("auth/login.html", form={"next": request.args.get("next", "")}, problems={})
    try:
        data = load_form(LoginSchema(), request.form)
    except Invalid as error:
        return render_template("auth/login.html", form=request.form, problems=error.problems), 422
    redis, subject = redis_connection(), throttle.account(data["email"])
    # Checked before the password: during a lockout even the right one is refused (and costs no hashing).
    lockout = throttle.check(redis, subject, request.remote_addr)
    if lockout is not None:
        return _locked_out("auth/login.html", lockout, form=request.form, problems={})
    user = accounts.authenticate(data["email"], data["password"])
    if user is None:
        lockout = throttle.failed(redis, subject, request.remote_addr)
        if lockout is not None:
            return _locked_out("auth/login.html", lockout, form=request.form, problems={})
        problems = {"password": "That email and password do not match an account."}
        return render_template("auth/login.html", form=request.form, problems=problems), 422
    throttle.succeeded(redis, subject)
    login_user(user, remember=bool(request.form.get("remember")))
    return redirect(safe_next(data["next"]), 303)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    # Server-side: a new session generation, so a copy of this session or remember cookie is refused too.
    accounts.sign_out_everywhere(current_user._get_current_object())
    logout_user()
    return redirect(url_for("auth.login"), 303)


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    """End every other session and remember cookie of the user; this one stays signed in."""
    user = current_user._get_current_object()
    accounts.sign_out_everywhere(user)
    _stay_signed_in(user)
    return render_template("auth/password.html", problems={}, done=False, signed_out=True)


def _locked_out(template: str, lockout: throttle.Lockout, **context):
    """429 with `Retry-After` and the page saying why and for how long."""
    context.setdefault("problem", lockout.message)
    context["locked_out"] = lockout.message
    return render_template(template, **context), 429, {"Retry-After": str(lockout.retry_after)}


# What a wrong guess at an invitation looks like: a bad link, another address than the one invited, or (below) a
# wrong password for the account of someone coming back.
GUESSED = ("token", "email")


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    redis, address = redis_connection(), request.remote_addr
    lockout = throttle.check(redis, None, address)
    if lockout is not None:
        return _locked_out("auth/join_invalid.html", lockout)
    try:
        invitation = accounts.open_invitation(token)
    except Invalid as error:
        lockout = throttle.failed(redis, None, address)
        if lockout is not None:
            return _locked_out("auth/join_invalid.html", lockout)
        return render_template("auth/join_invalid.html", problem=error.problems["token"]), 410
    if request.method == "GET":
        return render_template("auth/join.html", invitation=invitation, token=token, form={"email": invitation.email or ""}, problems={})
    subject = throttle.invitation(invitation.id)
    lockout = throttle.check(redis, subject, address)
    if lockout is not None:
        return _locked_out("auth/join_invalid.html", lockout)
    try:
        data = load_form(JoinSchema(), request.form)
        user = accounts.accept_invitation(token, data["email"], data["name"], data["password"])
    except Invalid as error:
        if any(key in error.problems for key in GUESSED) or \
                error.problems.get("password") == accounts.WRONG_RETURNING_PASSWORD:
            lockout = throttle.failed(redis, subject, address)
            if lockout is not None:
                return _locked_out("auth/join_invalid.html", lockout)
        return render_template("auth/join.html", invitation=invitation, token=token, form=request.form, problems=error.problems), 422
    throttle.succeeded(redis, subject)
    # Projects whose team (a repository's team.yaml, an override, a default) names the new member open to them now.
    people.join_configured_projects(user)
    logout_user()
    login_user(user)
    return redirect(url_for("projects.index"), 303)


def _stay_signed_in(user) -> None:
    """After a new session generation, log this browser in again under it (its remember cookie too, if it had one)."""
    had_cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    login_user(user, remember=had_cookie)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "GET":
        return render_template("auth/password.html", problems={}, done=False)
    user = current_user._get_current_object()
    try:
        data = load_form(PasswordSchema(), request.form)
        accounts.change_password(user, data["current_password"], data["new_password"])
    except Invalid as error:
        return render_template("auth/password.html", problems=error.problems, done=False), 422
    _stay_signed_in(user)
    return render_template("auth/password.html", problems={}, done=True)
