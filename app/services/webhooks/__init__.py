"""Outbound webhooks: signing, delivery and retries, the SSRF guard, and the project secrets they read.

Used by the runtime (the workflow `webhook` action) and by the extension gateway; imports neither.
"""
