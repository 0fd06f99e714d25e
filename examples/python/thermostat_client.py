"""Calls the thermostat from Python: the Rust server of examples/thermostat, or any server of
examples/thermostat/thermostat.yaml, at `$SWITCHBOARD_URL` (by default the Unix socket).

docs/python.md shows how to install what it needs (the `switchboard` command, the runtime and the
generated `thermostat` package) in a fresh virtual environment and run it; CI runs those steps.
"""

import datetime as dt

import switchboard
from thermostat import ThermostatBlockingClient

with ThermostatBlockingClient.connect(switchboard.Endpoint.from_env()) as thermostat:
    print("set-point:", thermostat.get_setpoint(), "°C")
    ends_at = thermostat.boost(1.5, dt.timedelta(minutes=5))  # `reason` is optional
    print("boosted until", ends_at)
    readings = thermostat.subscribe_temperature_changed()
    print("reading:", readings.next(timeout=10))  # TimeoutError after 10 s without one
