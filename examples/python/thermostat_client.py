"""Calls the Rust thermostat server (`cargo run -p thermostat-example`, or any server of
examples/thermostat/thermostat.yaml) from Python over the default Unix socket.

    pip install ./python ./examples/python/thermostat
    python examples/python/thermostat_client.py
"""

import datetime as dt

from thermostat import ThermostatBlockingClient

with ThermostatBlockingClient.connect("unix:") as thermostat:
    print("set-point:", thermostat.get_setpoint())
    ends_at = thermostat.boost(1.5, dt.timedelta(minutes=5), reason="guests")
    print("boosted until", ends_at)
    readings = thermostat.subscribe_temperature_changed()
    print("next reading:", readings.next(timeout=10))
