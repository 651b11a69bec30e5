"""The pure workflow runtime: gates, effects, SLA clocks, automations and directives over plain issue snapshots.

Nothing here touches a database, a queue or the network; callers pass `now` and all issue data in.
"""
