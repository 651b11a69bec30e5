"""Use cases, one package per component of the product: `sync`, `runtime`, `webhooks` (see README, Layout).

The modules here are shared by every package: projects and accounts, the audit trail, errors, encryption
and prepared statements, plus health checks and demo data. They import no component package (`demo`
composes them).
"""
