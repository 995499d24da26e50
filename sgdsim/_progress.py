"""Chunked execution of long compiled runs, with a progress bar where a person would wait."""

from __future__ import annotations

import math
from collections.abc import Iterator

#: work (state updates, e.g. replicas·steps·dim) above which a run shows a bar by default
SHOW_ABOVE = 2e9


def chunks(steps: int, work: float, progress: bool | None, *, desc: str, multiple_of: int = 1,
           split_long: bool = True, max_length: int | None = None) -> Iterator[tuple[int, int]]:  # fmt: skip
    """``(start, length)`` pieces of a ``steps``-step run.

    ~100 pieces, each a multiple of ``multiple_of`` steps (a record interval), when a bar is
    shown (tqdm; ``progress=None``: when ``work`` ≥ :data:`SHOW_ABOVE`) so that it moves, and,
    with ``split_long``, for any run of ``work`` ≥ 5e7 (so that e.g. a divergence can end it
    early); otherwise one piece (a kernel call costs ~1 ms). No piece is longer than
    ``max_length`` steps (rounded down to a multiple of ``multiple_of``), e.g. to bound the
    per-piece arrays a run builds (its learning rates).
    """
    show = progress if progress is not None else work >= SHOW_ABOVE
    cap = steps if max_length is None else max(multiple_of, max_length // multiple_of * multiple_of)
    if (not show and (work < 5e7 or not split_long) and steps <= cap) or steps == 0:
        yield 0, steps
        return
    size = max(1, math.ceil(steps / 100)) if (show or (work >= 5e7 and split_long)) else steps
    size = min(math.ceil(size / multiple_of) * multiple_of, cap)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc, unit="step", leave=False)
    try:
        for start in range(0, steps, size):
            length = min(size, steps - start)
            yield start, length
            if bar is not None:
                bar.update(length)
    finally:
        if bar is not None:
            bar.close()
