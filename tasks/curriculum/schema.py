"""The Arrow schema of a curriculum stage's `tasks.parquet` (kept import-light: the catalog's
registry reads it)."""

from __future__ import annotations

import pyarrow as pa

_STR = pa.string()

# The local trainer's format: `rl.episode.AgentTask` fields, then the difficulty annotations.
STAGE_TASK_SCHEMA = pa.schema(
    [
        ("id", _STR),
        ("question", _STR),
        ("answers", pa.list_(_STR)),
        ("mask_urls", pa.list_(_STR)),
        ("capability", _STR),
        ("k", pa.int32()),
        ("n_correct", pa.int32()),
        ("pass_rate", pa.float64()),
        ("mean_tokens", pa.float64()),
        ("token_bin", _STR),
        ("bucket", _STR),
    ]
)
