"""Timing by turns for the in-process benches: each variant's CPU and wall time a call, the best of several runs,
and one variant's ratio to another's (its baseline, measured in the same run)."""

import time
from collections.abc import Awaitable, Callable


async def per_call(call: Callable[[], Awaitable], count: int) -> tuple[float, float]:
    """CPU and wall milliseconds a call of `call`, over `count` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await call()
    return (time.process_time() - cpu) / count * 1e3, (time.perf_counter() - wall) / count * 1e3


async def best_by_turns(
    variants: dict[str, Callable[[], Awaitable]], count: int, runs: int, unit: str
) -> dict[str, tuple[float, float]]:
    """Each variant `count` times, by turns, `runs` times over; prints each run and returns each one's best
    (CPU, wall) milliseconds a call."""
    best = {name: (float("inf"), float("inf")) for name in variants}
    for _ in range(runs):
        for name, call in variants.items():
            cpu, wall = await per_call(call, count)
            print(f"{name:12} cpu {cpu:.3f} ms  wall {wall:.3f} ms a {unit}")
            best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def print_ratio(best: dict[str, tuple[float, float]], baseline: str, variant: str) -> None:
    (cpu_base, wall_base), (cpu, wall) = best[baseline], best[variant]
    print(f"best: {baseline} cpu {cpu_base:.3f} / wall {wall_base:.3f} ms, {variant} {cpu:.3f} / {wall:.3f} ms")
    print(f"{variant} ÷ {baseline}: cpu {cpu / cpu_base:.2f}, wall {wall / wall_base:.2f}")
