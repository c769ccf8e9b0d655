"""Labelling that survives a killed worker: one Parquet part per episode in the store.

A round's labels directory (local or in the artifact store, through a pyarrow
FileSystem) holds `parts/<seed>.parquet` while the round labels, each written under a
temporary name and moved into place, so a part is there whole or not at all. A retried
attempt labels only the seeds with no part: nothing is labelled twice or lost (a part
is named by its seed, so even a double write is one part). When every seed has its
part, they are combined into `labels.parquet` and the parts are deleted; a directory
with `labels.parquet` is finished and a retry just reads it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from worker.rl.labels import LABELS_FILE, LabelRequest, combine, labelled_episodes, metadata_of

PARTS = "parts"


def _write(filesystem: Any, path: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    partial = f"{path}.partial"
    with filesystem.open_output_stream(partial) as out:
        out.write(buffer.getvalue())
    filesystem.move(partial, path)


def _read(filesystem: Any, path: str) -> pa.Table:
    with filesystem.open_input_file(path) as source:
        return pq.read_table(source)


def finished(filesystem: Any, directory: str) -> bool:
    return filesystem.get_file_info(f"{directory}/{LABELS_FILE}").type == pafs.FileType.File


def done_seeds(filesystem: Any, directory: str) -> set[int]:
    """Seeds whose episode has a whole part in `directory`."""
    infos = filesystem.get_file_info(pafs.FileSelector(f"{directory}/{PARTS}", allow_not_found=True))
    return {
        int(info.base_name.removesuffix(".parquet"))
        for info in infos
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
    }


def label_resumably(
    request: LabelRequest,
    seeds: Sequence[int],
    filesystem: Any,
    directory: str,
    on_episode: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """The labels of `seeds` in `directory`, labelling (as Ray tasks) only the seeds an
    earlier attempt did not finish; `on_episode(done, total)` as parts are written."""
    if finished(filesystem, directory):
        return _read(filesystem, f"{directory}/{LABELS_FILE}")
    filesystem.create_dir(f"{directory}/{PARTS}", recursive=True)
    done = done_seeds(filesystem, directory) & set(seeds)
    missing = [s for s in seeds if s not in done]
    if on_episode is not None:
        on_episode(len(done), len(seeds))
    for table in labelled_episodes(request, missing) if missing else ():
        seed = metadata_of(table)["seeds"][0]
        _write(filesystem, f"{directory}/{PARTS}/{seed}.parquet", table)
        done.add(seed)
        if on_episode is not None:
            on_episode(len(done), len(seeds))
    table = combine([_read(filesystem, f"{directory}/{PARTS}/{seed}.parquet") for seed in seeds])
    _write(filesystem, f"{directory}/{LABELS_FILE}", table)
    filesystem.delete_dir(f"{directory}/{PARTS}")
    return table
