"""Optional values may be left out of generated Python: struct fields, method, command and goal
arguments, signal values and error fields default to `None`, and a required value that follows an
optional one is passed by keyword. Serves tests/python/garden.yaml and calls it, in one process.

Usage: optional_values.py ENDPOINT_URL. Prints PASS when every check passed.
"""

from __future__ import annotations

import asyncio
import sys

from garden import (
    Bed,
    GardenBlockingClient,
    GardenClient,
    GardenHandler,
    GardenProperties,
    GardenServer,
    NoRoom,
    Plant,
    WaterFeedback,
    WaterGoal,
)
import switchboard as sb

URL = sys.argv[1]
STEP = 5.0


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print("ok", what, flush=True)


class Gardener(GardenHandler):
    server: GardenServer

    def __init__(self) -> None:
        self.sown: list[tuple[Plant, str | None, int, str | None]] = []
        self.labels: asyncio.Queue[str | None] = asyncio.Queue()
        self.goals: list[WaterGoal] = []

    async def sow(self, ctx: sb.CallContext, plant: Plant, bed: str | None, count: int, soil: str | None) -> Bed:
        self.sown.append((plant, bed, count, soil))
        if count > 3:
            raise NoRoom(bed or "default")
        if bed is None:
            await self.server.emit_planted(plant)
        else:
            await self.server.emit_planted(plant, bed)
        return Bed(soil, plants=[plant] * count)

    async def label(self, ctx: sb.CallContext, text: str | None) -> None:
        await self.labels.put(text)

    async def water(self, goal: sb.GoalContext[WaterFeedback], litres: float | None, bed: str) -> float:
        poured = 1.0 if litres is None else litres
        await goal.feedback(WaterFeedback(poured))
        return poured

    async def accept_water(self, ctx: sb.CallContext, goal: WaterGoal) -> None:
        self.goals.append(goal)


async def main() -> None:
    gardener = Gardener()
    gardener.server = await GardenServer.serve(gardener, GardenProperties(), URL)
    client = await asyncio.wait_for(GardenClient.connect(URL), STEP)

    fern = Plant("fern")
    check(fern == Plant("fern", None) and fern.notes is None, "an optional field defaults to None")
    bare = Bed(plants=[fern])
    check(bare.soil is None, "an optional field before a required one defaults to None")
    check(Bed("loam", plants=[]).soil == "loam", "the required field after it is a keyword")

    planted = await client.subscribe_planted()
    bed = await client.sow(fern, count=2)
    check(gardener.sown[-1] == (fern, None, 2, None), "optional arguments default to None")
    check(bed == Bed(plants=[fern, fern]), "a reply without its optional field")
    signal = await planted.next(STEP)
    check(signal is not None and signal.plant == fern and signal.bed is None, "a signal without its optional value")
    rose = Plant("rose", "red")
    bed = await client.sow(rose, "north", count=1, soil="clay")
    check(gardener.sown[-1] == (rose, "north", 1, "clay"), "optional arguments given")
    check(bed == Bed("clay", plants=[rose]), "a reply with its optional field")
    signal = await planted.next(STEP)
    check(signal is not None and signal.bed == "north", "a signal with its optional value")
    planted.close()
    try:
        await client.sow(fern, count=4)
        check(False, "a declared error")
    except NoRoom as error:
        check(error.bed == "default" and error.free_slots is None, "an error field defaults to None")

    await client.label()
    check(await asyncio.wait_for(gardener.labels.get(), STEP) is None, "a command argument defaults to None")
    goal = await client.water(bed="north")
    check(await goal.result(STEP) == 1.0, "a goal argument defaults to None")
    check(gardener.goals[-1] == WaterGoal(bed="north"), "the goal class without its optional field")
    goal = await client.water(0.5, bed="south")
    check(await goal.result(STEP) == 0.5 and gardener.goals[-1] == WaterGoal(0.5, bed="south"), "a goal argument given")

    def blocking() -> None:
        with GardenBlockingClient.connect(URL) as garden:
            check(garden.sow(fern, count=1) == Bed(plants=[fern]), "blocking call without optional arguments")
            check(garden.sow(fern, "east", count=1, soil="sand").soil == "sand", "blocking call with them")
            check(garden.water(bed="west").result(STEP) == 1.0, "blocking goal without optional arguments")
            garden.label("tomatoes")

    await asyncio.get_running_loop().run_in_executor(None, blocking)
    check(gardener.sown[-1] == (fern, "east", 1, "sand"), "the blocking client forwards keyword arguments")
    check(await asyncio.wait_for(gardener.labels.get(), STEP) == "tomatoes", "blocking command")
    await client.close()
    await gardener.server.close()
    print("PASS", flush=True)


asyncio.run(main())
