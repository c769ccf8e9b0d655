"""`python -m worker.main`, plus a disk that fills on demand.

An unprivileged test cannot mount a tiny tmpfs, so the full disk is made like this:
while the file named by RLSCHED_FAULTS_DISK_FULL_FLAG exists and its text occurs in a
checkpoint's path, RLlib's `save_to_path` writes part of the checkpoint and then writes
to /dev/full, which fails in the kernel with ENOSPC, exactly as a full disk would
mid-save. Everything around it (the worker, RLlib's training, Temporal's retries, the
app's index) is the real code. Remove the file and the disk has room again.
"""

from __future__ import annotations

import os
from pathlib import Path


def install_full_disk(flag: Path) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    original = Algorithm.save_to_path

    def save_to_path(self: Algorithm, path: str | None = None, *args: object, **kwargs: object) -> str:
        pattern = flag.read_text().strip() if flag.exists() else ""
        if pattern and path is not None and pattern in str(path):
            Path(path).mkdir(parents=True, exist_ok=True)
            (Path(path) / "algorithm_state.pkl").write_bytes(b"\0" * 4096)  # half written
            with open("/dev/full", "wb") as full:
                full.write(b"\0" * 4096)
                full.flush()  # OSError: [Errno 28] No space left on device
        return original(self, path, *args, **kwargs)

    Algorithm.save_to_path = save_to_path  # type: ignore[method-assign]


if __name__ == "__main__":
    install_full_disk(Path(os.environ["RLSCHED_FAULTS_DISK_FULL_FLAG"]))
    from worker.main import main

    main()
