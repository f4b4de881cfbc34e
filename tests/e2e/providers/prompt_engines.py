"""What the prompt-only engines' modules (test_tgi.py, test_triton.py) share: the conversation they
render through a chat template, its ChatML and Llama 3 renderings, and the fields they cannot take."""

from __future__ import annotations

from typing import Any

from .conformance import Rejected

USER: list[Any] = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
CHATML = (
    "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"
)
LLAMA3 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nhello there<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)


def rejected(model: str) -> dict[str, Rejected]:
    """Tools, images and n: a prompt-only engine takes none of them."""
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    return {
        "tools": Rejected(model, {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        "image": Rejected(
            model, {"messages": [{"role": "user", "content": [image]}]}, "messages[0].content[0]"
        ),
        "n": Rejected(model, {"n": 2}, "n"),
    }
