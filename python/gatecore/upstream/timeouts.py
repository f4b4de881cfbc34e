"""Resolved upstream timeouts of one model (seconds)."""

from __future__ import annotations

from gatecore.config.schema import DEFAULT_TIMEOUTS, TimeoutsConfig


class Timeouts:
    """Connect, time to the response head, idle between body chunks, and the whole exchange."""

    __slots__ = ("connect", "first_byte", "idle", "total")

    def __init__(self, connect: float, first_byte: float, idle: float, total: float):
        self.connect = connect
        self.first_byte = first_byte
        self.idle = idle
        self.total = total

    @classmethod
    def resolve(cls, *layers: TimeoutsConfig | None) -> Timeouts:
        """Later layers override earlier ones field by field; the built-in defaults fill the rest."""
        values = {
            "connect": DEFAULT_TIMEOUTS.connect,
            "first_byte": DEFAULT_TIMEOUTS.first_byte,
            "idle": DEFAULT_TIMEOUTS.idle,
            "total": DEFAULT_TIMEOUTS.total,
        }
        for layer in layers:
            if layer is None:
                continue
            for name in values:
                value = getattr(layer, name)
                if value is not None:
                    values[name] = value
        return cls(**{name: float(value or 0.0) for name, value in values.items()})
