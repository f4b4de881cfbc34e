"""Chat messages rendered into one prompt, for engines whose native API takes text (tgi, triton).

These engines do not apply the model's chat template on their native endpoints, so the gateway does,
with the template named by `providers[].chat_template`:

- `chatml` (default; Qwen, many fine-tunes): `<|im_start|>{role}\\n{content}<|im_end|>\\n` per message,
  then `<|im_start|>assistant\\n`.
- `llama3`: `<|begin_of_text|>`, then `<|start_header_id|>{role}<|end_header_id|>\\n\\n{content}<|eot_id|>`
  per message, then the assistant header.
- `mistral`: `<s>[INST] {system}\\n\\n{user} [/INST]{assistant}</s>[INST] {user} [/INST]`.

Only text survives a prompt: image parts, tools and tool messages are a 400 naming the field (use
the engine's OpenAI-compatible `/v1/chat/completions` with kind `openai` for those).
"""

from __future__ import annotations

from gatecore.providers.from_hub_request import (
    JsonObject,
    content_parts,
    messages_of,
    text_of,
    untranslatable,
)


def chat_turns(doc: JsonObject, kind: str) -> list[tuple[str, str]]:
    """`(role, text)` per message; system/developer become `system`."""
    if doc.get("tools"):
        raise untranslatable("tools", kind, "prompt-only endpoint: use kind 'openai' on the engine's /v1")
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages_of(doc)):
        role, param = message["role"], f"messages[{i}]"
        if role not in ("system", "developer", "user", "assistant"):
            raise untranslatable(f"{param}.role", kind, f"'{role}' messages need tool support")
        if message.get("tool_calls"):
            raise untranslatable(f"{param}.tool_calls", kind, "prompt-only endpoint")
        for j, part in enumerate(content_parts(message.get("content"), f"{param}.content")):
            if part["type"] != "text":
                raise untranslatable(f"{param}.content[{j}]", kind, "only text fits a prompt")
        text = text_of(message.get("content"), f"{param}.content")
        turns.append(("system" if role == "developer" else role, text))
    return turns


def render_prompt(turns: list[tuple[str, str]], template: str) -> str:
    """The prompt for `turns` in `template` (one of config CHAT_TEMPLATES), ending where the
    assistant's answer starts."""
    if template == "llama3":
        body = "".join(f"<|start_header_id|>{r}<|end_header_id|>\n\n{t}<|eot_id|>" for r, t in turns)
        return f"<|begin_of_text|>{body}<|start_header_id|>assistant<|end_header_id|>\n\n"
    if template == "mistral":
        system = "\n\n".join(t for r, t in turns if r == "system")
        out = "<s>"
        for role, text in ((r, t) for r, t in turns if r != "system"):
            if role == "user":
                if system:
                    text, system = f"{system}\n\n{text}", ""
                out += f"[INST] {text} [/INST]"
            else:
                out += f"{text}</s>"
        return out
    body = "".join(f"<|im_start|>{r}\n{t}<|im_end|>\n" for r, t in turns)
    return f"{body}<|im_start|>assistant\n"
