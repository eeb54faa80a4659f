"""The README's timm and Hugging Face sections: three lines each, and they run offline."""
from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

pytest.importorskip("timm", reason="the timm extra is part of the test extra")
pytest.importorskip("transformers", reason="the transformers extra is part of the test extra")

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_code(title: str) -> list[str]:
    section = README.read_text().split(f"#### {title}\n", 1)[1].split("\n#", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1, f"the {title} section should have one Python example"
    return blocks[0].strip().splitlines()


@pytest.mark.slow  # a full-size ResNet-50 and ConvNeXt on the CPU
@pytest.mark.parametrize("title", ["timm", "Hugging Face"])
def test_readme_model_section_runs_offline(title, monkeypatch):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    lines = _section_code(title)
    assert len(lines) == 3
    namespace: dict = {}
    exec("\n".join(lines[:-1]), namespace)
    widget = eval(lines[-1].split("#")[0], namespace)
    if hasattr(widget, "wait"):
        widget.wait()
    assert widget.error == ""
    assert widget.image_png  # it shows something
