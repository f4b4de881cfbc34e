"""Config checks of the bedrock/tgi/triton/ollama/cohere kinds, and the prompt templates."""

from __future__ import annotations

from typing import Any

import pytest

from gatecore.config import ConfigError, load_config
from gatecore.config.schema import bedrock_region
from gatecore.providers.hub_chat_to_prompt import chat_turns, render_prompt


def _config(provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": [provider],
        "models": [{"name": "m", "deployments": [{"provider": provider["name"], "model": "x"}]}],
        "auth": {"unauthenticated": "loopback"},
    }


def test_bedrock_needs_region_and_credentials() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config({"name": "aws", "kind": "bedrock"}), {})
    assert info.value.errors == [
        "providers[0].aws_region: required unless base_url is https://bedrock-runtime.<region>.amazonaws.com",
        "providers[0].aws_access_key_id: required for provider kind 'bedrock'",
        "providers[0].aws_secret_access_key: required for provider kind 'bedrock'",
    ]
    provider = {
        "name": "aws", "kind": "bedrock", "base_url": "https://bedrock-runtime.us-west-2.amazonaws.com",
        "aws_access_key_id": "${KEY_ID}", "aws_secret_access_key": "${SECRET}",
    }  # fmt: skip
    config = load_config(_config(provider), {"KEY_ID": "AKID", "SECRET": "s3cret"})
    assert bedrock_region(config.providers[0]) == "us-west-2"
    assert config.providers[0].aws_secret_access_key == "s3cret"


def test_unknown_chat_template_and_missing_base_url() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config({"name": "t", "kind": "tgi", "chat_template": "vicuna"}), {})
    assert info.value.errors == [
        "providers[0].base_url: required for this provider kind",
        "providers[0].chat_template: unknown template 'vicuna' (chatml, llama3, mistral)",
    ]
    assert (
        load_config(_config({"name": "c", "kind": "cohere", "api_key": "k"}), {}).providers[0].kind
        == "cohere"
    )


def test_mistral_template_folds_system_into_first_user_turn() -> None:
    doc = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
        ]
    }
    turns = chat_turns(doc, "tgi")
    assert (
        render_prompt(turns, "mistral") == "<s>[INST] be brief\n\nhi [/INST]hello</s>[INST] and now? [/INST]"
    )
    assert render_prompt(turns, "chatml").endswith(
        "<|im_start|>user\nand now?<|im_end|>\n<|im_start|>assistant\n"
    )
