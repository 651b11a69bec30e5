"""Sync and the configuration loader: from a git branch to the active configuration every project runs on.

Git access, reading `.kiket/` trees, canonical copies, sync runs, activation, revision history (compare,
roll back), GitHub push hooks, the active configuration and its lower layers. The runtime and boards read
`configuration`; sync imports neither (activations are announced through `activation.listen`).
"""
