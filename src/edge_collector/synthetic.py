"""A synthetic power sensor whose reading the measuring process sets: known power per layer.

The CPU backend runs real NumPy kernels but a CPU package has no per-layer power sensor worth
modelling, so it *declares* each layer's power instead: before a layer runs it sets the level
(``set_uw``), after it the idle level. The sampler child reads the level from shared memory
like any sensor, with optional Gaussian noise, and writes it in either dialect. Because the
truth is known, the whole chain (sampler timing, the files, the project's ingestion and
power mapping) can be checked against it: the closed-loop test does exactly that.

The parent also integrates the level over time, which stands in for NVML's energy counter
(``energy_mj``).
"""

from __future__ import annotations

import multiprocessing
import random
import time

from edge_collector.sampler import Fields, PowerSource

#: the voltage of the synthetic ``mV,mA`` lines (a Jetson board's 5 V input)
SYNTHETIC_MV = 5000.0


class SyntheticSource(PowerSource):
    """Reads the level in shared memory; ``noise`` is the relative standard deviation."""

    name = "synthetic"
    reader = "synthetic"

    def __init__(
        self,
        idle_uw: float,
        dialect: str = "jetson",
        noise: float = 0.0,
        seed: int = 0,
        context: str = "spawn",
    ) -> None:
        if dialect not in ("jetson", "nvml"):
            raise ValueError(f"dialect must be jetson or nvml, got {dialect!r}")
        self.dialect = dialect
        self.idle_uw = float(idle_uw)
        self.noise = float(noise)
        self.seed = seed
        self._level = multiprocessing.get_context(context).Value("d", self.idle_uw, lock=False)
        self._random: random.Random | None = None
        self._energy_uj = 0.0
        self._since = time.time()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_random"] = None
        return state

    # ---- the measuring process
    def set_uw(self, microwatts: float) -> None:
        """Switch the level (and account the energy of the previous one)."""
        now = time.time()
        self._energy_uj += self._level.value * (now - self._since)
        self._since = now
        self._level.value = float(microwatts)

    def idle(self) -> None:
        self.set_uw(self.idle_uw)

    def energy_mj(self) -> float:
        """Energy since creation, in millijoules (the stand-in for NVML's energy counter)."""
        return (self._energy_uj + self._level.value * (time.time() - self._since)) / 1000.0

    # ---- the sampler process
    def open(self) -> None:
        self._random = random.Random(self.seed)

    def read(self) -> Fields:
        level = self._level.value
        if self.noise and self._random is not None:
            level *= 1.0 + self._random.gauss(0.0, self.noise)
        if self.dialect == "jetson":
            return SYNTHETIC_MV, level / SYNTHETIC_MV
        return (level / 1000.0,)

    def format(self, fields: Fields) -> str:
        if self.dialect == "jetson":  # 0.01 mA: a 50 µW step at 5 V, well below any signal
            return "{:.1f},{:.2f}".format(*fields)
        return str(int(round(fields[0])))
