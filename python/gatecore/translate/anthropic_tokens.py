"""`POST /v1/messages/count_tokens`: the input tokens of an Anthropic request, counted by gatecore.

Counted in Rust (`gatecore._core.count_tokens`) with the tokenizer of the provider the model routes to,
over the text the model reads: system, every text block, tool calls (name and input), tool results,
thinking text and the tool definitions (name, description, input schema). Images are not counted: their
cost depends on their pixel size, which the gateway does not decode.
"""

from __future__ import annotations

from gatecore._core import count_tokens
from gatecore.api.anthropic import MessagesRequest, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock


def count_request_tokens(request: MessagesRequest, encoding: str) -> int:
    """Tokens of everything `request` gives the model to read, in `encoding`."""
    texts: list[str] = []
    system = request.system
    if isinstance(system, str):
        texts.append(system)
    elif system:
        texts.extend(block.text for block in system)
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            texts.append(content)
            continue
        for block in content:
            if isinstance(block, TextBlock):
                texts.append(block.text)
            elif isinstance(block, ToolUseBlock):
                texts.append(block.name)
                texts.append(bytes(block.input).decode())
            elif isinstance(block, ToolResultBlock):
                result = block.content
                if isinstance(result, str):
                    texts.append(result)
                else:
                    texts.extend(part.text for part in result if isinstance(part, TextBlock))
            elif isinstance(block, ThinkingBlock):
                texts.append(block.thinking)
    for tool in request.tools or ():
        texts.append(tool.name)
        if tool.description:
            texts.append(tool.description)
        if tool.input_schema:
            texts.append(bytes(tool.input_schema).decode())
    return count_tokens("\n".join(texts), encoding) if texts else 0
