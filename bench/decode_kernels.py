"""What a CPU decode step could still shed: weight formats for its matmuls, and torch.compile.

    python bench/decode_kernels.py                 # matmuls of the default model, 1-4 rows
    python bench/decode_kernels.py --compile       # + a decode step eager vs torch.compile

1) Every nn.Linear of the model (its real shapes, lm_head included) multiplied by x of 1, 2
   and 4 rows in three weight formats, alternated rep by rep: the exact bf16 weight; int8 with
   one scale per output channel (torch's `_weight_int8pack_mm`, what `engine.int8_decode`
   uses); int4 in groups of 32 inputs with a scale and zero per group
   (`_weight_int4pack_mm_for_cpu`, the layout of the GGUF Q4_1 blocks the base ships in).
   Printed: milliseconds a decode step spends in matmuls per format, lm_head's share, and each
   format's largest output error against its own dequantised weight (a kernel check).
   Times are per-thread CPU seconds of one thread (`time.thread_time`), so another process on
   the machine changes them less than wall time; --threads 2 measures wall time instead.
2) With --compile, one greedy decode step (a 512-token row, the engine's int8 decode off:
   its context switch breaks dynamo's graph) eager vs `torch.compile(dynamic=True)` of the
   model's forward, alternated, min of --reps; the compile time is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from wideseek.llm.local import LocalEngine

GROUP = 32  # inputs per int4 group (GGUF Q4_1 blocks are 32 weights)


def per_call_us(fn: Callable[[], object], clock: Callable[[], float], n: int) -> float:
    for _ in range(5):
        fn()
    start = clock()
    for _ in range(n):
        fn()
    return (clock() - start) / n * 1e6


def formats(weight: torch.Tensor) -> dict[str, tuple[Callable, float]]:
    """name -> (x -> x @ W.T in that format, the call's max error vs its dequantised W)."""
    out_f, in_f = weight.shape
    w = weight.float()
    scale8 = w.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q8 = torch.round(w / scale8[:, None]).clamp(-127, 127).to(torch.int8)
    s8 = scale8.to(weight.dtype)
    groups = w.reshape(out_f, in_f // GROUP, GROUP)
    low, high = groups.amin(-1), groups.amax(-1)
    scale4 = ((high - low) / 15).clamp(min=1e-8)
    q4 = torch.round((groups - low[..., None]) / scale4[..., None]).clamp(0, 15)
    zero = low + 8 * scale4  # the kernel computes (q - 8) * scale + zero
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
        q4.reshape(out_f, in_f).to(torch.int32), 1
    )
    sz = torch.stack([scale4, zero], -1).transpose(0, 1).contiguous().to(weight.dtype)
    dequant = {
        "int8": q8.float() * scale8[:, None],
        "int4": ((q4 - 8) * scale4[..., None] + zero[..., None]).reshape(out_f, in_f),
    }
    calls = {
        "bf16": lambda x: x @ weight.T,
        "int8": lambda x: torch.ops.aten._weight_int8pack_mm(x, q8, s8),
        "int4": lambda x: torch.ops.aten._weight_int4pack_mm_for_cpu(x, packed, GROUP, sz),
    }
    x = torch.randn(2, in_f, dtype=weight.dtype)
    result = {}
    for name, call in calls.items():
        ref = x.float() @ (dequant.get(name, w)).T
        result[name] = (call, float((call(x).float() - ref).abs().max()))
    return result


def matmul_figures(engine: LocalEngine, reps: int, clock: Callable[[], float]) -> None:
    linears = [(n, m) for n, m in engine.model.named_modules() if type(m) is nn.Linear]
    shapes: dict[tuple[int, int], list[str]] = {}
    for name, module in linears:
        shapes.setdefault(tuple(module.weight.shape), []).append(name)
    dtype = next(engine.model.parameters()).dtype
    print(f"{len(linears)} linear layers, {len(shapes)} shapes, weights {dtype}")
    for rows in (1, 2, 4):
        total = {"bf16": 0.0, "int8": 0.0, "int4": 0.0}
        head = dict(total)
        errors = {"bf16": 0.0, "int8": 0.0, "int4": 0.0}
        for shape, names in shapes.items():
            weight = engine.model.get_submodule(names[0]).weight.detach().to(dtype)
            x = torch.randn(rows, shape[1], dtype=dtype)
            calls = formats(weight)
            best = {k: float("inf") for k in calls}
            for _ in range(reps):  # alternated: drift in the machine falls on all formats
                for name, (call, err) in calls.items():
                    best[name] = min(best[name], per_call_us(lambda c=call, x=x: c(x), clock, 20))
                    errors[name] = max(errors[name], err)
            for name in total:
                total[name] += best[name] * len(names) / 1e3
                if any(n.endswith("lm_head") for n in names):
                    head[name] += best[name] / 1e3
        cells = "  ".join(f"{k} {v:6.2f} ms (lm_head {head[k]:5.2f})" for k, v in total.items())
        ratios = f"bf16/int8 {total['bf16'] / total['int8']:.2f}x, "
        ratios += f"int8/int4 {total['int8'] / total['int4']:.2f}x"
        print(f"{rows} row(s): {cells}   {ratios}")
    print("kernel check, max |out - x @ dequantised W.T|: " + str(errors))


def compile_figures(engine: LocalEngine, reps: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from local_engine import decode_step_ms

    model = engine.model
    eager = model.forward
    compiled = torch.compile(model.forward, dynamic=True)
    start = time.perf_counter()
    model.forward = compiled
    decode_step_ms(engine, 512, 1, steps=4)
    print(f"\ncompile + first steps: {time.perf_counter() - start:.0f} s")
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(reps):
        for name, forward in (("eager", eager), ("compiled", compiled)):
            model.forward = forward
            times[name].append(decode_step_ms(engine, 512, 1, steps=16))
    model.forward = eager
    e, c = min(times["eager"]), min(times["compiled"])
    print(f"decode step, ctx 512, 1 row: eager {e:.1f} ms, compiled {c:.1f} ms ({e / c:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="model/adapter dir or base spec")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="1: per-thread CPU time; more: wall")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    engine = LocalEngine(args.model, int8_decode="off")
    print(f"model {args.model}; torch {torch.__version__}, {args.threads} thread(s)")
    with torch.inference_mode():
        matmul_figures(engine, args.reps, clock)
    if args.compile:
        compile_figures(engine, args.reps)


if __name__ == "__main__":
    main()
