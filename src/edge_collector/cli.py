"""Command line: ``python -m edge_collector <command> ...`` (also ``kedro collect ...``)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any, Sequence

from edge_collector import __version__

logger = logging.getLogger("edge_collector")

DESCRIPTION = """\
Measure per-layer power and runtime on this device and write a raw dataset in the layout the
power-modelling project ingests (docs/raw-data-format.md). Guide: docs/collector.md.

commands:
  rails    list the INA3221 power rails of this Jetson board (and what --rail would read)
  jetson   a TensorRT engine (from ONNX) on a Jetson: IProfiler per-layer timings, INA3221 power
  nvml     a PyTorch model on an NVIDIA GPU: isolated layers as CUDA-graph bursts, NVML power
  cpu      NumPy kernels with a synthetic power of known value per layer (try-out, tests)
  sweep    sampled layer configurations, one one-layer network each, resumable (any backend)

Typical:
  python -m edge_collector rails
  python -m edge_collector jetson --onnx resnet18.onnx --out data/01_raw/orin_nano
  python -m edge_collector sweep nvml --out data/01_raw/h200_sweep --conv 300 --dry-run
then, in the project:  kedro run --params raw_dataset=<the --out folder's name>
"""

EXIT_INTERRUPTED = 130


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m edge_collector", description=DESCRIPTION, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"edge_collector {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True

    rails = commands.add_parser(
        "rails", help="list INA3221 rails", description=_rails_help(), formatter_class=_Formatter
    )
    _jetson_power_options(rails)

    cpu = _command(commands, "cpu", "NumPy kernels, synthetic known power (no device needed)")
    cpu.add_argument("--model", default="lenet", help="built-in network: lenet, small_cnn")
    cpu.add_argument("--batch", type=int, default=1)
    cpu.add_argument("--seed", type=int, default=0, help="inputs, weights and power noise")
    _cpu_options(cpu)
    _common_options(cpu, single=True)

    jetson = _command(commands, "jetson", "TensorRT + INA3221 on a Jetson board")
    source = jetson.add_mutually_exclusive_group(required=True)
    source.add_argument("--onnx", help="ONNX file to build the engine from")
    source.add_argument("--engine", help="a serialized engine built with detailed verbosity")
    jetson.add_argument("--model", help="model folder name (default: the file's stem)")
    jetson.add_argument(
        "--input-shape", help="for ONNX inputs with dynamic dimensions, e.g. 1,3,224,224"
    )
    _jetson_options(jetson)
    _common_options(jetson, single=True)

    nvml = _command(commands, "nvml", "PyTorch + NVML on an NVIDIA GPU")
    nvml.add_argument("--model", required=True, help="torchvision model name, e.g. resnet18")
    nvml.add_argument("--input-shape", default="1,3,224,224", help="N,C,H,W")
    _nvml_options(nvml)
    _common_options(nvml, single=True)

    sweep = commands.add_parser(
        "sweep",
        help="sampled layer configurations (resumable)",
        description=_sweep_help(),
        formatter_class=_Formatter,
    )
    backends = sweep.add_subparsers(dest="backend", metavar="backend")
    backends.required = True
    for name, add_options, summary in (
        ("jetson", _jetson_options, "one-layer TensorRT networks + INA3221"),
        ("nvml", _nvml_options, "one-layer PyTorch modules + NVML"),
        ("cpu", _cpu_options, "NumPy kernels + synthetic power"),
    ):
        sub = _command(backends, name, f"sweep on the {name} backend: {summary}")
        _sweep_options(sub)
        add_options(sub)
        _common_options(sub, single=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # a `kill` stops as cleanly as a Ctrl-C
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        logger.error("Interrupted. %s", _resume_hint(args))
        return EXIT_INTERRUPTED
    except ImportError as exc:
        logger.error("%s: %s", exc, _install_hint(args))
        return 1
    except Exception as exc:
        from edge_collector.measure import MeasurementError
        from edge_collector.rawdata import DatasetError
        from edge_collector.sampler import SamplerError

        if isinstance(exc, (DatasetError, MeasurementError, SamplerError, ValueError, OSError)):
            logger.error("%s", exc)  # errors name the file and the fix; no traceback
            return 1
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------- dispatch
def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "rails":
        return _list_rails(args)
    backend_name = args.backend if args.command == "sweep" else args.command
    backend = make_backend(backend_name, args)
    from edge_collector.rawdata import Dataset

    dataset = Dataset(args.out)
    try:
        if args.command == "sweep":
            return _sweep(backend, dataset, args)
        return _single(backend, dataset, args)
    finally:
        backend.close()


def make_backend(name: str, args: argparse.Namespace) -> Any:
    """The backend ``name`` configured from the command line (no heavy import yet)."""
    period_s = args.period_ms / 1000.0
    if name == "cpu":
        from edge_collector.backends.cpu import CpuBackend

        return CpuBackend(
            dialect=args.dialect,
            idle_w=args.idle_w,
            noise=args.noise,
            seed=args.seed,
            period_s=period_s,
            cycles=args.cycles,
            min_layer_ms=args.min_layer_ms,
            max_cycles=args.max_cycles,
            burst_ms=args.burst_ms,
            settle_ms=args.settle_ms,
            record_ms=args.record_ms,
            whole_ms=args.whole_ms,
        )
    if name == "jetson":
        from edge_collector.backends.jetson import JetsonBackend

        return JetsonBackend(
            sysfs_root=args.sysfs_root,
            rail=args.rail,
            precision=args.precision,
            period_s=period_s,
            cycles=args.cycles,
            warmup=args.warmup,
            min_layer_ms=args.min_layer_ms,
            max_cycles=args.max_cycles,
            workspace_mb=args.workspace_mb,
            engine_dir=args.engine_dir,
            input_shape=getattr(args, "input_shape", None),
            require_rails=not args.dry_run,
        )
    if name == "nvml":
        from edge_collector.backends.nvml import NvmlBackend

        return NvmlBackend(
            gpu=args.gpu,
            dtype=args.dtype,
            period_s=period_s,
            burst_ms=args.burst_ms,
            settle_ms=args.settle_ms,
            record_ms=args.record_ms,
            whole_ms=args.whole_ms,
            channels_last=not args.no_channels_last,
        )
    raise ValueError(f"unknown backend {name!r}")


def _single(backend: Any, dataset: Any, args: argparse.Namespace) -> int:
    from edge_collector.measure import measure_idle, measure_model, prepare_dataset

    name, model, summary = _single_model(backend, args)
    needs_idle = args.remeasure_idle or not dataset.has_idle()
    if args.dry_run:
        from edge_collector.layers import Network

        estimate = backend.estimate_s(model) if isinstance(model, Network) else None
        print(f"Plan for {dataset.root}/{name} ({backend.kind} backend, {backend.dialect} dialect)")
        if needs_idle:
            print(f"  idle power first: {args.idle_s:g} s")
        for line in summary:
            print(line)
        if estimate is not None:
            from edge_collector.progress import format_duration

            total = estimate + (args.idle_s if needs_idle else 0.0)
            print(f"  expected duration: {format_duration(total)} (estimate)")
        else:
            print(f"  expected duration: {backend.duration_note()}")
        return 0
    prepare_dataset(backend, dataset)
    if needs_idle:
        measure_idle(backend, dataset, args.idle_s)
    started = time.monotonic()
    try:
        folder = measure_model(backend, dataset, name, model, overwrite=args.overwrite)
    except BaseException:
        dataset.discard_staging()
        raise
    logger.info("Wrote %s in %.1f s", folder, time.monotonic() - started)
    _next_steps(dataset)
    return 0


def _single_model(backend: Any, args: argparse.Namespace) -> Any:
    """(folder name, what the backend runs, lines describing it for dry runs)."""
    from edge_collector.layers import builtin_network, describe

    if args.command == "cpu":
        network = builtin_network(args.model, args.batch)
        lines = [f"  {name:<8} {describe(layer)}" for name, layer in network.layers]
        return network.name if args.batch == 1 else f"{network.name}_b{args.batch}", network, lines
    if args.command == "jetson":
        path = args.onnx or args.engine
        from pathlib import Path

        name = args.model or Path(path).stem
        kind = "ONNX" if args.onnx else "engine"
        return name, {"onnx": args.onnx, "engine": args.engine, "name": name}, [f"  {kind} {path}"]
    name = args.model
    from edge_collector.layers import parse_shape

    shape = parse_shape(args.input_shape)
    if shape and shape[0] != 1:
        name = f"{name}_b{shape[0]}"
    lines = [f"  torchvision.models.{args.model}, input {shape}, {args.dtype}"]
    return name, {"torchvision": args.model, "input_shape": shape, "name": name}, lines


def _sweep(backend: Any, dataset: Any, args: argparse.Namespace) -> int:
    from edge_collector.distributions import Limits
    from edge_collector.sweep import run_sweep

    defaults = backend.default_limits
    limits = Limits(
        max_gflops=args.max_gflops if args.max_gflops is not None else defaults.max_gflops,
        max_mb=args.max_mb if args.max_mb is not None else defaults.max_mb,
        element_bytes=defaults.element_bytes,
    )
    counts = {"conv": args.conv, "pool": args.pool, "dense": args.dense}
    counts = {k: v for k, v in counts.items() if v > 0}
    if not counts:
        raise ValueError("nothing to sweep: give --conv, --pool or --dense a positive count")
    measured = run_sweep(
        backend,
        dataset,
        counts=counts,
        seed=args.seed,
        limits=limits,
        idle_s=args.idle_s,
        prefix=args.prefix,
        remeasure_idle=args.remeasure_idle,
        dry_run=args.dry_run,
    )
    if not args.dry_run:
        logger.info("Sweep complete: %d configuration(s) measured in this run", measured)
        _next_steps(dataset)
    return 0


def _list_rails(args: argparse.Namespace) -> int:
    from edge_collector.ina3221 import board_info, choose_rails, find_rails, rails_name
    from edge_collector.sampler import SensorError

    rails = find_rails(args.sysfs_root)
    info = board_info(args.sysfs_root)
    for key, value in info.items():
        print(f"{key}: {value}")
    if not rails:
        choose_rails(rails)  # raises with the searched paths
    chosen = choose_rails(rails, args.rail)
    width = max(len(rail.qualified) for rail in rails) + 1
    print(f" {'rail':<{width}} {'mV':>7} {'mA':>7} {'mW':>8}  layout  files")
    for rail in rails:
        try:
            millivolts, milliamps = rail.read()
            values = f"{millivolts:7d} {milliamps:7d} {millivolts * milliamps / 1000:8.0f}"
        except SensorError as exc:
            values = f"unreadable: {exc}"
        mark = "*" if rail in chosen else " "
        print(f"{mark}{rail.qualified:<{width}} {values}  {rail.layout:<6}  {rail.voltage_path}")
    print(f"* read by default (--rail overrides): {rails_name(chosen)}")
    return 0


# ---------------------------------------------------------------------------- options
def _command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary, formatter_class=_Formatter)


def _common_options(parser: argparse.ArgumentParser, single: bool) -> None:
    group = parser.add_argument_group("dataset")
    group.add_argument(
        "--out", required=True, help="dataset folder to write into, e.g. data/01_raw/my_data"
    )
    group.add_argument(
        "--idle-s", type=float, default=8.0, help="idle power measurement (once per dataset)"
    )
    group.add_argument(
        "--remeasure-idle", action="store_true", help="measure idle power again (else kept)"
    )
    group.add_argument(
        "--period-ms", type=float, default=1.0, help="power sampling period (1 = 1 kHz)"
    )
    group.add_argument(
        "--dry-run", action="store_true", help="print the plan and expected duration only"
    )
    if single:
        group.add_argument(
            "--overwrite", action="store_true", help="replace the model folder if it exists"
        )
    group.add_argument("-v", "--verbose", action="store_true")


def _sweep_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sweep (distributions: --help of 'sweep')")
    group.add_argument("--conv", type=int, default=0, help="convolution configurations")
    group.add_argument("--pool", type=int, default=0, help="pooling configurations")
    group.add_argument("--dense", type=int, default=0, help="dense configurations")
    group.add_argument(
        "--seed", type=int, default=0, help="the sweep's seed (same seed, same plan)"
    )
    group.add_argument(
        "--max-gflops", type=float, help="reject configurations above (default: per backend)"
    )
    group.add_argument(
        "--max-mb", type=float, help="reject configurations moving more (default: per backend)"
    )
    group.add_argument("--prefix", default="sweep", help="model folder prefix")


def _cpu_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cpu backend")
    group.add_argument("--dialect", choices=("nvml", "jetson"), default="nvml")
    group.add_argument("--idle-w", type=float, default=4.0, help="synthetic idle power")
    group.add_argument("--noise", type=float, default=0.01, help="relative sensor noise (std)")
    group.add_argument("--cycles", type=int, default=100, help="jetson dialect: minimum cycles")
    _cycle_options(group)
    group.add_argument("--burst-ms", type=float, default=5.0, help="nvml dialect: burst length")
    group.add_argument("--settle-ms", type=float, default=20.0, help="nvml dialect: unrecorded")
    group.add_argument("--record-ms", type=float, default=100.0, help="nvml dialect: recorded")
    group.add_argument("--whole-ms", type=float, default=100.0, help="whole-network benchmark")
    if not any(a.dest == "seed" for a in parser._actions):  # sweeps share the sweep's seed
        group.add_argument("--seed", type=int, default=0)


def _cycle_options(group: Any) -> None:
    group.add_argument(
        "--min-layer-ms",
        type=float,
        default=50.0,
        help="more cycles until every layer has run this long in total (power samples land in "
        "a layer's windows in proportion to its total time)",
    )
    group.add_argument("--max-cycles", type=int, default=20000, help="cap of the above")


def _jetson_power_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("INA3221 power rails")
    group.add_argument("--sysfs-root", default="/", help="where sysfs is (tests: a fake tree)")
    group.add_argument(
        "--rail",
        help="rail(s) to read: VDD_IN, GPU+CPU+SOC, 1-0041:LABEL (default: the input rail, "
        "else the sum of all rails)",
    )


def _jetson_options(parser: argparse.ArgumentParser) -> None:
    _jetson_power_options(parser)
    group = parser.add_argument_group("TensorRT")
    group.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    group.add_argument("--cycles", type=int, default=1000, help="minimum profiled cycles")
    group.add_argument("--warmup", type=int, default=50, help="cycles run before recording")
    _cycle_options(group)
    group.add_argument("--workspace-mb", type=int, default=1024, help="builder workspace")
    group.add_argument("--engine-dir", help="keep built engines here (reused when present)")


def _nvml_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("PyTorch / NVML")
    group.add_argument("--gpu", type=int, default=0, help="CUDA and NVML device index")
    group.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    group.add_argument("--burst-ms", type=float, default=2.0, help="GPU time per CUDA-graph replay")
    group.add_argument(
        "--settle-ms", type=float, default=150.0, help="replays before recording (sensor settle)"
    )
    group.add_argument("--record-ms", type=float, default=300.0, help="recorded replays per layer")
    group.add_argument("--whole-ms", type=float, default=1000.0, help="whole-model benchmark")
    group.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format")


# ---------------------------------------------------------------------------- helpers
def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _resume_hint(args: argparse.Namespace) -> str:
    if getattr(args, "command", None) == "sweep":
        return "Completed configurations are kept; run the same command again to continue."
    return "Nothing was written for the interrupted model."


def _install_hint(args: argparse.Namespace) -> str:
    backend = getattr(args, "backend", None) or getattr(args, "command", None)
    hints = {
        "jetson": "the jetson backend needs TensorRT's Python bindings "
        "(JetPack: apt install python3-libnvinfer)",
        "nvml": "the nvml backend needs PyTorch and nvidia-ml-py (pip install torch torchvision "
        "nvidia-ml-py)",
    }
    return hints.get(str(backend), "a dependency of this command is missing")


def _next_steps(dataset: Any) -> None:
    name = dataset.name
    logger.info(
        "Next, in the power-modelling project (data/01_raw/%s): kedro data add %s && "
        "kedro run --params raw_dataset=%s",
        name,
        name,
        name,
    )


def _rails_help() -> str:
    from edge_collector import ina3221

    return (ina3221.__doc__ or "").split("\n\n", 1)[0] + (
        "\n\nPrints the board, the JetPack release, every rail with its reading, and marks the "
        "rail(s) the jetson backend reads by default."
    )


def _sweep_help() -> str:
    from edge_collector.distributions import Limits, describe_distributions

    return "\n".join(
        [
            "Measure sampled layer configurations, each as a one-layer network in its own "
            "model folder.",
            "Resumable: completed configurations are listed in <out>/sweep_manifest.json; "
            "re-run the same command to continue.",
            "",
            "Distributions (configuration i of a class depends only on seed, class and i):",
            *("  " + line for line in describe_distributions(Limits())),
            "",
            "Limits default per backend: cpu 0.2 GFLOP / 64 MB, jetson 25 GFLOP / 512 MB, "
            "nvml 200 GFLOP / 4096 MB.",
        ]
    )


def forward(argv: list[str]) -> int:
    """Run ``python -m edge_collector ARGV`` in a fresh interpreter; its exit code.

    For wrappers such as ``kedro collect``: a host process (Kedro, with its logging set-up and
    NumPy already loaded) would otherwise be re-imported by every spawned sampler process and
    would decide NumPy's thread count. Ctrl-C reaches both processes (one process group): the
    collector stops cleanly and this waits for it; SIGTERM is passed on.
    """
    import subprocess

    process = subprocess.Popen([sys.executable, "-m", "edge_collector", *argv])
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue  # the collector received it too and is stopping
    finally:
        signal.signal(signal.SIGTERM, previous)
