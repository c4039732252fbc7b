"""Tuning a training script from the shell: ``tunelab run study.yaml``.

A study file (YAML or TOML) declares the command, the space, the metric and the budgets
(:mod:`tunelab.script.studyfile`); each trial runs the command as a subprocess and reads what it
reports from its output (:mod:`tunelab.script.command`); a script may also call
:func:`tunelab.report` (:mod:`tunelab.script.reporter`).
"""
