"""One torchrun rank of the atlas tests: ``python -m torch.distributed.run ... atlas_rank.py
DATA OUT [DIE_AFTER]``; with DIE_AFTER, rank 1 dies (os._exit, no cleanup) once it has
scanned that many images, as a killed process would (only in torchrun's first attempt,
so that a restarted rank runs to the end)."""
from __future__ import annotations

import os
import sys

import torch

import cnn_widgets as cw
from cnn_widgets.atlas import atlas

OPTIONS = dict(k=4, batch_size=16, workers=1, checkpoint_every=2)


def main() -> None:
    data, out = sys.argv[1:3]
    die_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
        die_after = None
    rank = int(os.environ["RANK"])
    torch.set_num_threads(1)

    def progress(done: int, total: int) -> None:
        if rank == 1 and die_after is not None and done >= die_after:
            os._exit(3)

    atlas(cw.load_model("fashion-cnn", device="cpu"), data, out, progress=progress, **OPTIONS)


if __name__ == "__main__":
    main()
