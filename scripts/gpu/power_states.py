#!/usr/bin/env python3
"""Power states of one NVIDIA GPU, measured through NVML: the data behind simwatt's engine power model.

Phases, in order, each logged with its start and end and the GPU's energy counter at both ends:
  empty_idle     no CUDA context of this process (the GPU as a host without an engine sees it)
  context_idle   a CUDA context, nothing allocated
  loaded_idle    90% of device memory allocated (weights and KV cache of a live server), no work
  gemm_N         bf16 N x N x N matrix products back to back (compute-bound), for several N
  copy           device-to-device copy of large tensors (memory-bound)
  gemv_B         a decode-like batched matrix-vector product (B rows against a 8192 x 28672 weight)
  duty_<kind>_<gap>ms  bursts of ~5 ms of work, each followed by a host wait of <gap> ms: the GPU waits
                 on the host as it does between a serving engine's iterations
Mean power of a phase is the energy counter's difference over its length (exact, whatever the sampling
rate); the 20 Hz samples (power, instant power where the driver has it, SM and memory clocks, throttle
reasons, temperature) are kept beside it. Nothing on the GPU is changed: the power limit and clocks are
read, never set.

Usage: python3 power_states.py OUT_DIR [--quick]   (writes samples.csv, phases.json, summary.md)
"""

import csv
import json
import os
import sys
import threading
import time

import pynvml as nv

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
QUICK = "--quick" in sys.argv
PHASE_S = 4.0 if QUICK else 12.0
DUTY_S = 3.0 if QUICK else 7.0
SETTLE_S = 1.5  # dropped from the start of each phase (power ramps, 1 s averaging window)

os.makedirs(OUT, exist_ok=True)
nv.nvmlInit()
H = nv.nvmlDeviceGetHandleByIndex(0)


def safe(f, *a):
    try:
        return f(*a)
    except Exception:
        return None


INSTANT = getattr(nv, "NVML_FI_DEV_POWER_INSTANT", 186)


def instant_w():
    try:
        v = nv.nvmlDeviceGetFieldValues(H, [INSTANT])[0]
        if v.nvmlReturn != 0:
            return None
        return v.value.uiVal / 1000.0
    except Exception:
        return None


def energy_j():
    try:
        return nv.nvmlDeviceGetTotalEnergyConsumption(H) / 1000.0
    except Exception:
        return None


samples = []
phase_now = ["start"]
stop = threading.Event()


def sampler():
    t0 = time.monotonic()
    while not stop.is_set():
        t = time.monotonic() - t0
        samples.append(
            {
                "t_s": round(t, 4),
                "phase": phase_now[0],
                "power_w": (safe(nv.nvmlDeviceGetPowerUsage, H) or 0) / 1000.0 or None,
                "power_instant_w": instant_w(),
                "energy_j": energy_j(),
                "sm_clock_mhz": safe(nv.nvmlDeviceGetClockInfo, H, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": safe(nv.nvmlDeviceGetClockInfo, H, nv.NVML_CLOCK_MEM),
                "gpu_util_pct": getattr(safe(nv.nvmlDeviceGetUtilizationRates, H), "gpu", None),
                "temp_c": safe(nv.nvmlDeviceGetTemperature, H, nv.NVML_TEMPERATURE_GPU),
                "throttle_reasons": safe(nv.nvmlDeviceGetCurrentClocksThrottleReasons, H),
                "mem_used_gib": round(getattr(safe(nv.nvmlDeviceGetMemoryInfo, H), "used", 0) / 2**30, 2),
            }
        )
        time.sleep(0.05)


T0 = time.monotonic()
phases = []
info = {}


def save():
    """Writes what is measured so far, so that a run cut short still returns its phases."""
    with open(os.path.join(OUT, "phases.json"), "w") as f:
        json.dump({"device": info, "phases": phases}, f, indent=1)


def phase(name, seconds, body=None, **extra):
    """Runs body() repeatedly (or sleeps) for `seconds`; records energy-counter power after SETTLE_S."""
    phase_now[0] = name + ":settle"
    end = time.monotonic() + seconds
    settle_end = time.monotonic() + SETTLE_S
    started = False
    e0 = t0 = None
    work = 0
    while True:
        now = time.monotonic()
        if not started and now >= settle_end:
            if body is not None:
                import torch

                torch.cuda.synchronize()
            e0, t0 = energy_j(), time.monotonic()
            phase_now[0] = name
            started = True
            work = 0
        if now >= end:
            break
        if body is None:
            time.sleep(0.01)
        else:
            work += body()
    if body is not None:
        import torch

        torch.cuda.synchronize()
    e1, t1 = energy_j(), time.monotonic()
    in_phase = [s for s in samples if s["phase"] == name]
    if e0 is not None and e1 is not None:
        mean_w, how = (e1 - e0) / (t1 - t0), "energy_counter"
    else:
        vals = [s["power_w"] for s in in_phase if s["power_w"] is not None]
        mean_w, how = (sum(vals) / len(vals) if vals else float("nan")), "sample_mean"
    rec = {
        "phase": name,
        "start_s": round(t0 - T0, 3),
        "end_s": round(t1 - T0, 3),
        "mean_power_w": round(mean_w, 2),
        "mean_power_from": how,
        "work_units": work,
        "work_per_s": round(work / (t1 - t0), 4),
    }
    rec.update(extra)
    for key in ("sm_clock_mhz", "mem_clock_mhz", "temp_c", "power_w"):
        vals = sorted(v[key] for v in in_phase if v[key] is not None)
        if vals:
            rec[key + "_median"] = vals[len(vals) // 2]
    reasons = 0
    for s in in_phase:
        reasons |= s["throttle_reasons"] or 0
    rec["throttle_reasons_or"] = reasons
    phases.append(rec)
    print(json.dumps(rec), flush=True)
    save()
    return rec


th = threading.Thread(target=sampler, daemon=True)
th.start()
info.update({
    "name": nv.nvmlDeviceGetName(H),
    "driver": nv.nvmlSystemGetDriverVersion(),
    "power_limit_w": (safe(nv.nvmlDeviceGetPowerManagementLimit, H) or 0) / 1000.0,
    "enforced_power_limit_w": (safe(nv.nvmlDeviceGetEnforcedPowerLimit, H) or 0) / 1000.0,
    "power_limit_range_w": [x / 1000.0 for x in (safe(nv.nvmlDeviceGetPowerManagementLimitConstraints, H) or [])],
    "max_sm_clock_mhz": safe(nv.nvmlDeviceGetMaxClockInfo, H, nv.NVML_CLOCK_SM),
    "max_mem_clock_mhz": safe(nv.nvmlDeviceGetMaxClockInfo, H, nv.NVML_CLOCK_MEM),
    "memory_gib": round(nv.nvmlDeviceGetMemoryInfo(H).total / 2**30, 1),
    "persistence_mode": safe(nv.nvmlDeviceGetPersistenceMode, H),
    "instant_power_field": instant_w() is not None,
    "energy_counter": energy_j() is not None,
})
print(json.dumps(info), flush=True)

phase("empty_idle", PHASE_S)

import torch  # noqa: E402  (after the empty-idle phase: no CUDA context before it)

torch.cuda.init()
x = torch.zeros(1, device="cuda")
torch.cuda.synchronize()
phase("context_idle", PHASE_S)

free, total = torch.cuda.mem_get_info()
hold_bytes = int(total * 0.9) - (total - free)
held = torch.empty(hold_bytes // 2, dtype=torch.bfloat16, device="cuda")
torch.cuda.synchronize()
phase("loaded_idle", PHASE_S, held_gib=round(hold_bytes / 2**30, 1))
del held
torch.cuda.empty_cache()

# Compute-bound: bf16 GEMM of several sizes (the smaller ones draw less power at the same clocks).
for n in (2048, 4096, 8192, 16384):
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    reps = max(1, int(2e12 // (2 * n**3)))

    def gemm():
        for _ in range(reps):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        return reps

    gemm()
    r = phase(f"gemm_{n}", PHASE_S, gemm, flops_per_unit=2 * n**3)
    r["tflops"] = round(r["work_per_s"] * 2 * n**3 / 1e12, 1)
    print(json.dumps({"phase": r["phase"], "tflops": r["tflops"]}), flush=True)
    del a, b

# Memory-bound: copies of 4 GiB.
src = torch.empty(2 * 2**30, dtype=torch.bfloat16, device="cuda")
dst = torch.empty_like(src)


def copy():
    for _ in range(10):
        dst.copy_(src)
    torch.cuda.synchronize()
    return 10


copy()
r = phase("copy", PHASE_S, copy, bytes_per_unit=2 * src.numel() * 2)
r["tb_per_s"] = round(r["work_per_s"] * 2 * src.numel() * 2 / 1e12, 2)
del src, dst

# Decode-like: a batch of B token vectors against one large weight (memory-bound on the weight).
w = torch.randn(8192, 28672, dtype=torch.bfloat16, device="cuda")
for bsz in (1, 16, 128, 512):
    v = torch.randn(bsz, 8192, dtype=torch.bfloat16, device="cuda")

    def gemv():
        for _ in range(50):
            torch.matmul(v, w)
        torch.cuda.synchronize()
        return 50

    gemv()
    r = phase(f"gemv_{bsz}", PHASE_S, gemv, flops_per_unit=2 * bsz * 8192 * 28672, weight_bytes=w.numel() * 2)
    r["tflops"] = round(r["work_per_s"] * 2 * bsz * 8192 * 28672 / 1e12, 2)
    r["weight_tb_per_s"] = round(r["work_per_s"] * w.numel() * 2 / 1e12, 2)

# Duty cycle: ~5 ms bursts of work, then the host waits `gap` ms with the GPU idle.
a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
v = torch.randn(64, 8192, dtype=torch.bfloat16, device="cuda")


def timed(fn, n=20):
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / n


one_gemm = timed(lambda: torch.matmul(a, b))
one_gemv = timed(lambda: torch.matmul(v, w))
kinds = {
    "gemm": (lambda: torch.matmul(a, b), max(1, round(0.005 / one_gemm))),
    "gemv": (lambda: torch.matmul(v, w), max(1, round(0.005 / one_gemv))),
}
for kind, (op, per_burst) in kinds.items():
    burst_s = timed(lambda: [op() for _ in range(per_burst)], n=10)
    for gap_ms in (0, 1, 2, 5, 10, 20, 50):
        busy = [0.0]

        def burst():
            t = time.perf_counter()
            for _ in range(per_burst):
                op()
            torch.cuda.synchronize()
            busy[0] += time.perf_counter() - t
            if gap_ms:
                time.sleep(gap_ms / 1000.0)
            return 1

        r = phase(f"duty_{kind}_{gap_ms}ms", DUTY_S, burst, burst_s=round(burst_s, 5), gap_ms=gap_ms)
        length = r["end_s"] - r["start_s"]
        r["busy_fraction"] = round(min(1.0, r["work_units"] * burst_s / length), 4)

stop.set()
th.join()

with open(os.path.join(OUT, "samples.csv"), "w", newline="") as f:
    wr = csv.DictWriter(f, fieldnames=list(samples[0].keys()))
    wr.writeheader()
    wr.writerows(samples)
info["torch"] = torch.__version__
save()
with open(os.path.join(OUT, "summary.md"), "w") as f:
    f.write(f"# {info['name']}: power states\n\n")
    f.write("| phase | mean power (W) | SM clock (MHz) | temp (C) | work/s | extra |\n|---|---|---|---|---|---|\n")
    for p in phases:
        extra = {k: p[k] for k in ("tflops", "tb_per_s", "weight_tb_per_s", "busy_fraction", "gap_ms") if k in p}
        f.write(
            f"| {p['phase']} | {p['mean_power_w']} | {p.get('sm_clock_mhz_median')} | {p.get('temp_c_median')} "
            f"| {p['work_per_s']} | {extra} |\n"
        )
print("done", flush=True)
