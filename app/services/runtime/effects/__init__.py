"""The effects engine: what an issue event does once its change has committed (spec §8.7, §10, §8.3).

`engine.run_issue_event` is what the `default` queue runs for every event the issue services emit
(`app.services.runtime.events`). It rebuilds the issue snapshot from the database, keeps the SLA timer
of the current state entry in step, runs the hook actions in spec order (creation: the initial
`on_enter`; transition: old `on_exit`, the transition's actions, new `on_enter`; checklist: the
owning state's `on_complete`), then the automations the event triggers. Every action becomes a
`Directive` (app.kiket.runtime.directives) and is performed by `actions`, through the handler of its
family (`notify`, `changes`, `reminders`); each outcome is recorded (one audit event per hook run, one
AutomationRun per automation run). A failing action is logged, recorded, retried on its own job, and
never undoes the change that caused it.
"""
