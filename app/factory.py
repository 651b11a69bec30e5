"""The application factory."""

from __future__ import annotations

import logging
import os
import sys

import jinja2
from flask import Flask
from redis import Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from app import config, database  # noqa: F401  (database: pooled connections are checked after idling)
from app.extensions import csrf, db, login_manager, migrate, sock
from app.models.base import render_item


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app: settings from the environment, then `overrides` (tests), then extensions and blueprints."""
    # KIKET_INSTANCE_PATH moves instance/ (SQLite file, secret key, demo credentials) elsewhere: tests, a second `make run`.
    instance_path = (overrides or {}).get("KIKET_INSTANCE_PATH") or os.environ.get("KIKET_INSTANCE_PATH")
    app = Flask(__name__, instance_relative_config=True,
                instance_path=os.path.abspath(instance_path) if instance_path else None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(config.load_settings(os.environ, app.instance_path))
    app.config.update(overrides or {})
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = config.instance_secret_key(app.instance_path)
    # A typo in a template should fail loudly in tests, not render an empty string.
    app.jinja_env.undefined = jinja2.StrictUndefined
    configure_logging(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"), render_item=render_item)
    login_manager.init_app(app)
    csrf.init_app(app)
    sock.init_app(app)
    app.extensions["redis"] = Redis.from_url(app.config["REDIS_URL"], socket_timeout=5, socket_connect_timeout=2)

    from app import models  # noqa: F401  (registers the tables with the metadata)
    from app.services import live as live_updates  # noqa: F401  (listens to commits: live updates)
    from app.blueprints import (
        admin, auth, boards, errors, health, hooks, issues, live, migrations, notifications, projects, repositories,
    )
    from app.blueprints import account, api, audit as audit_pages, extensions as extension_pages
    from app.blueprints.admin import rq as rq_admin
    from app.blueprints.auth import session as auth_session
    from app.cli import kiket_cli, worker_command
    from app.htmx import register_template_helpers
    from app import request_limits, security_headers, template_filters

    security_headers.init_app(app)
    request_limits.init_app(app)
    auth_session.init_app(app)
    errors.init_app(app)
    register_template_helpers(app)
    template_filters.register(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(projects.bp)
    app.register_blueprint(repositories.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(migrations.bp)
    app.register_blueprint(issues.bp)
    app.register_blueprint(api.bp)
    api.init_app(app)
    app.register_blueprint(account.bp)
    app.register_blueprint(extension_pages.bp)
    app.register_blueprint(boards.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(audit_pages.bp)
    rq_admin.init_app(app)
    app.cli.add_command(kiket_cli)
    app.cli.add_command(worker_command)
    connect_services()
    if app.config["KIKET_PROXY_COUNT"]:
        # Behind N proxies: request.remote_addr (log-in throttling) and the scheme come from their headers.
        # Outermost, so every other middleware sees the client's address too.
        count = app.config["KIKET_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)
    return app


def connect_services() -> None:
    """Components that react to another's changes, connected here so that the one changing never imports them.

    An activation (sync) creates the first configuration's seed issues in its transaction and emits
    `workflow.updated` after its commit: both belong to the runtime, which sync must not import. The
    gateway hears the runtime's events and handles extension deliveries the same way.
    """
    from app.services.gateway import outbound, replies
    from app.services.runtime import events, seeding
    from app.services.sync import activation
    from app.services.webhooks import delivery

    activation.listen("runtime", activation.Listener(activating=seeding.seed_issues_once,
                                                     activated=events.workflow_updated))
    # The gateway sends the runtime's events to subscriptions and extensions, and reads extensions' replies.
    events.add_consumer("gateway", events.Consumer(queue="webhooks", issue_job="jobs.webhooks.publish_issue_events",
                                                   project_job="jobs.webhooks.publish_project_event"))
    delivery.register_handler(outbound.EXTENSION_HANDLER, delivery.Handler(prepare=outbound.prepare_extension_attempt,
                                                                           on_reply=replies.handle_reply))


def configure_logging(app: Flask) -> None:
    """Log to stdout once per process, with `%`-style lines."""
    root = logging.getLogger()
    if not any(getattr(h, "_kiket", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._kiket = True
        root.addHandler(handler)
    root.setLevel(os.environ.get("KIKET_LOG_LEVEL", "INFO"))
