"""The exceptions tdm raises, grouped by the phase in which they happen.

Pure steps never raise to their caller: their failures are :class:`~tdm.core.pipe.PipeError`
*values* inside a ``Failure``. Exceptions are for programmer errors while *defining* a pipeline,
for bad configuration, for effect handlers at their boundary, and for the run as a whole::

    TdmError                       root: ``except tdm.errors.TdmError`` catches everything below
    ├── DefinitionError            a pipeline built in Python is malformed
    │   ├── ArityError             a step got the wrong number of inputs
    │   ├── StepArgumentError      a step factory got a wrong argument (also a TypeError)
    │   └── DuplicateNameError     two different steps share one explicit name
    ├── ConfigError                a YAML file, a CLI argument or a setting is wrong (.file, .line)
    │   └── SecretNotFoundError    a named secret or key is missing (never shows a value)
    ├── EffectError                an effect handler failed (.node, .uri)
    │   ├── NoHandlerError         no handler is registered for an effect type
    │   ├── StateError             the audit store could not record a run
    │   └── AlertError             an alert could not be sent
    └── RunError                   the run itself could not proceed (.run_id)
        └── InputError             ``inputs=`` names an unknown input or misses a required one

Every error's message says what is wrong *and* how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AlertError",
    "ArityError",
    "ConfigError",
    "DefinitionError",
    "DuplicateNameError",
    "EffectError",
    "InputError",
    "NoHandlerError",
    "RunError",
    "SecretNotFoundError",
    "StateError",
    "StepArgumentError",
    "TdmError",
]


class TdmError(Exception):
    """Root of every exception tdm raises on purpose."""


class DefinitionError(TdmError):
    """A pipeline written in Python is malformed; raised while it is being built."""


class ArityError(DefinitionError):
    """A step was connected to the wrong number of parent frames."""


class StepArgumentError(DefinitionError, TypeError):
    """A step factory was called with an unknown, missing or ill-typed argument.

    Also a ``TypeError``, which is what Python raises for a bad call.
    """


class DuplicateNameError(DefinitionError):
    """Two different nodes of one pipeline were given the same explicit name."""


class ConfigError(TdmError):
    """Bad configuration: a YAML file, a CLI argument, a setting.

    Attributes:
        file: the file the problem is in, when there is one.
        line: the 1-based line number in ``file``, when known.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)


class SecretNotFoundError(ConfigError):
    """A secret section or key is missing; the message names it, never a value."""


class EffectError(TdmError):
    """An effect handler failed at its boundary.

    Attributes:
        node: the name of the effect node, when known.
        uri: the URI or URL involved (credentials removed), when there is one.
    """

    def __init__(self, message: str, *, node: str | None = None, uri: str | None = None) -> None:
        self.node = node
        self.uri = uri
        super().__init__(message)


class NoHandlerError(EffectError):
    """No handler is registered for this kind of effect."""


class StateError(EffectError):
    """The audit store could not record a run (the run's own result is never affected)."""


class AlertError(EffectError):
    """An alerter could not deliver an alert (the run's own result is never affected)."""


class RunError(TdmError):
    """The run as a whole could not proceed.

    Attributes:
        run_id: the id of the run, when one was assigned.
    """

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message)


class InputError(RunError):
    """``tdm.run(inputs=...)`` names an unknown input or leaves a required one out."""
