"""The Extension Gateway: API credentials, extension installations, webhook subscriptions, outbound events,
runtime tokens and extension replies. It calls the runtime services; the runtime never imports it."""
