"""Times AlpaServe's two simulators (alpa-projects/mms) on the workload
scripts/alpaserve_compare.sh gives `sim`: MODELS models resident on GPUS
GPUs (one model copy per GPU group of one GPU, models dealt round robin),
each served at batch 1 in LATENCY_S seconds, per-model Gamma arrivals at
RATE/MODELS requests/s with coefficient of variation CV, for DURATION_S
seconds, SLO SLO_S.

    python3 alpaserve_compare.py MMS_CHECKOUT MODE MODELS GPUS RATE CV DURATION_S LATENCY_S SLO_S

MODE: `event_loop` (simulate_one_case: AlpaServe's discrete-event
simulator) or `numba` (approximate_one_case: its numba approximation; the
first call compiles, so it is called once untimed and then timed).
Prints one line: `seconds requests goodput mean_latency_s` (seconds of the timed call,
wall clock, workload generation included as in AlpaServe's own benchmark).
Nothing of AlpaServe is copied here: it is imported from MMS_CHECKOUT.
"""

import sys
import time


def main():
    mms, mode = sys.argv[1], sys.argv[2]
    models, gpus = int(sys.argv[3]), int(sys.argv[4])
    rate, cv, duration, latency, slo = map(float, sys.argv[5:10])
    sys.path.insert(0, mms)
    from alpa_serve.placement_policy.base_policy import ModelPlacement
    from alpa_serve.profiling import LatencyMemData, ParallelConfig, ProfilingResult
    from alpa_serve.simulator.controller import (Controller, approximate_one_case,
                                                 simulate_one_case)
    from alpa_serve.simulator.executable import Executable
    from alpa_serve.simulator.workload import GammaProcess
    from alpa_serve.util import ServingCase
    from functools import partial

    config = ParallelConfig(1, 1, 1)
    names = [f"m{i}" for i in range(models)]
    groups = [[m for m in range(models) if m % gpus == g] for g in range(gpus)]

    def profile(name):
        data = LatencyMemData(latency={1: [latency]}, act_mem={1: [0.0]}, weight_mem=[0.0])
        return ProfilingResult(name, {config: data}, 0.0, 0.0)

    def register_models(controller):
        for name in names:
            controller.register_model.remote(name, partial(Executable, profile(name)))

    def generate_workload(start=0):
        process = GammaProcess(rate / models, cv)
        w = None
        for i, name in enumerate(names):
            wi = process.generate_workload(name, start, duration, slo=slo, seed=i)
            w = wi if w is None else w + wi
        return w

    def place_models(controller):
        if controller is not None:
            for g, ms in enumerate(groups):
                controller.create_mesh_group_manager.remote(g, [1, 1])
                for m in ms:
                    controller.create_replica.remote(names[m], g, [config])
            if isinstance(controller, Controller):
                controller.sync()
        return ModelPlacement([config] * gpus, groups)

    case = ServingCase(register_models, generate_workload, place_models)
    # Statistics skip this much at each end (AlpaServe's compute_stats
    # fails when it skips nothing); the timed simulation serves every request.
    warmup = 0.01 * duration
    if mode == "numba":
        approximate_one_case(case, warmup=warmup)  # compiles the numba kernels
        tic = time.perf_counter()
        stats, _ = approximate_one_case(case, warmup=warmup)
    elif mode == "event_loop":
        tic = time.perf_counter()
        stats, _ = simulate_one_case(case, warmup=warmup)
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - tic
    print(f"{seconds:.4f} {stats.num_requests} {stats.goodput:.6f} {stats.latency_mean:.6f}")


if __name__ == "__main__":
    main()
