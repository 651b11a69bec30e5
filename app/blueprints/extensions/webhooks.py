"""Webhook subscription pages of a project: subscribe a URL to events (the generated secret shown once),
unsubscribe, and each subscription's deliveries with request and response, redeliver."""

from flask import redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints.forms import load_form
from app.kiket.extensions import EVENT_TYPES
from app.services import projects
from app.services.errors import Invalid, NotFound
from app.services.gateway import subscriptions

from .schemas import SubscriptionSchema
from .views import bp


def _index(project, status: int = 200, **context):
    context.setdefault("form", {})
    context.setdefault("problems", {})
    context.setdefault("created", None)
    return render_template("extensions/webhooks.html", project=project, event_types=EVENT_TYPES,
                           subscriptions=subscriptions.listed(current_user, project), **context), status


def _subscription(key: str, subscription_id: int):
    subscription = subscriptions.get(current_user, subscription_id)
    if subscription.project.key != key.upper():
        raise NotFound(f"No webhook subscription {subscription_id} in {key}.")
    return subscription


@bp.route("/projects/<key>/webhooks")
def webhooks(key: str):
    return _index(projects.get_project(current_user, key))


@bp.route("/projects/<key>/webhooks", methods=["POST"])
def subscribe(key: str):
    project = projects.get_project(current_user, key)
    form = {"url": request.form.get("url", ""), "secret": request.form.get("secret", ""),
            "events": request.form.getlist("events")}
    try:
        data = load_form(SubscriptionSchema(), {**request.form, "events": form["events"]})
        subscription, generated = subscriptions.create(current_user, project, data["url"], data["events"],
                                                       data["secret"] or None)
    except Invalid as error:
        return _index(project, 422, form=form, problems=error.problems)
    # A generated secret exists only in this response: rendered, never redirected to.
    return _index(project, 201, created={"subscription": subscription, "secret": generated})


@bp.route("/projects/<key>/webhooks/<int:subscription_id>")
def webhook(key: str, subscription_id: int):
    subscription = _subscription(key, subscription_id)
    return render_template("extensions/webhook.html", project=subscription.project, subscription=subscription,
                           deliveries=subscriptions.recent_deliveries(subscription_id=subscription.id),
                           message=request.args.get("message"),
                           redeliver_url=lambda row: url_for("extensions.webhook_redeliver", key=key.upper(),
                                                             subscription_id=subscription.id, delivery_id=row.id))


@bp.route("/projects/<key>/webhooks/<int:subscription_id>/delete", methods=["POST"])
def unsubscribe(key: str, subscription_id: int):
    _subscription(key, subscription_id)
    subscriptions.delete(current_user, subscription_id)
    return redirect(url_for("extensions.webhooks", key=key.upper()), 303)


@bp.route("/projects/<key>/webhooks/<int:subscription_id>/deliveries/<int:delivery_id>/redeliver",
          methods=["POST"])
def webhook_redeliver(key: str, subscription_id: int, delivery_id: int):
    _subscription(key, subscription_id)
    source = subscriptions.delivery(current_user, delivery_id)
    if source.subscription_id != subscription_id:
        raise NotFound(f"No delivery {delivery_id} of this subscription.")
    row = subscriptions.redeliver(current_user, delivery_id)
    return redirect(url_for("extensions.webhook", key=key.upper(), subscription_id=subscription_id,
                            message=f"Event {row.event_id} queued again."), 303)
