"""A tiny real-architecture base for training tests: a 2-layer Llama (hidden 64) and a byte-level BPE tokenizer
trained here on the rows' own text, saved to a temporary folder (a few MB, well under a second per step)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from umi.data import build_rows, write_rows
from umi.data.rows import RowSets
from umi.schema import ToolDoc, Trajectory, Turn

# Tiny models gain nothing from a second thread, and two OpenMP threads on a shared 2-core machine stall each other.
torch.set_num_threads(1)


def _trajectory(i: int) -> Trajectory:
    city = ["Paris", "Oslo", "Lima", "Kyiv", "Quito", "Bern"][i % 6]
    tool = ToolDoc(
        Name=f"weather_for_meteo{i % 2}", function="Current weather of a city.", input={"city": "string, a city"}
    )
    return Trajectory(
        tools=[tool],
        instruction=f"What is the weather in {city}?",
        conversations=[
            Turn(role="user", value=f"What is the weather in {city}?"),
            Turn(role="assistant", value=f"I should look up the weather in {city}.\n Next: caller."),
            Turn(role="caller", value=f'Action: {tool.Name}\nAction Input: {{"city": "{city}"}}'),
            Turn(role="observation", value=f'{{"temperature": {10 + i}, "sky": "clear"}}'),
            Turn(role="assistant", value="I have the weather, I can answer.\n Next: conclusion."),
            Turn(role="conclusion", value=f"It is {10 + i} degrees and clear in {city}."),
        ],
    )


@pytest.fixture(scope="session")
def row_sets() -> RowSets:
    return build_rows([_trajectory(i) for i in range(6)])


@pytest.fixture(scope="session")
def rows_dir(tmp_path_factory: pytest.TempPathFactory, row_sets: RowSets) -> Path:
    out = tmp_path_factory.mktemp("rows")
    for name in ("backbone", "planner", "caller", "summarizer", "multitask"):
        write_rows(out / f"{name}.json", row_sets.get(name))
    return out


def make_tokenizer(texts: list[str], eos: str = "</s>") -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>"] + ([eos] if eos != "</s>" else [])
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token=eos, pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_base(
    tmp_path_factory: pytest.TempPathFactory, row_sets: RowSets, tiny_llama_saver: Callable[..., Path]
) -> Path:
    texts = [r.input + r.target for r in row_sets.multitask + row_sets.backbone]
    return tiny_llama_saver(
        make_tokenizer(texts),
        tmp_path_factory.mktemp("tiny-llama"),
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.3,  # a random lm_head at 0.02 caps every logit near 0: LoRA could not lower the loss
    )


@pytest.fixture(scope="session")
def books() -> Trajectory:
    """Two calls of two book APIs (`search_for_books`, then `author_for_books`), the second thought naming both:
    the shape API-name emphasis, unlikelihood and name ranking must tell apart (the step's own call, not the
    previous one)."""
    search, author = "search_for_books", "author_for_books"
    tools = [
        ToolDoc(Name=search, function="Search books by title.", input={"q": "string, a title"}),
        ToolDoc(Name=author, function="The author of a book.", input={"id": "string, a book id"}),
    ]
    conv = [
        Turn(role="user", value="Who wrote the best book about rivers?"),
        Turn(role="assistant", value=f"I call {search} to find river books.\n Next: caller."),
        Turn(role="caller", value=f'Action: {search}\nAction Input: {{"q": "rivers"}}'),
        Turn(role="observation", value='{"id": "b7", "title": "River"}'),
        Turn(role="assistant", value=f"{search} found b7; now {author} gives its author.\n Next: caller."),
        Turn(role="caller", value=f'Action: {author}\nAction Input: {{"id": "b7"}}'),
        Turn(role="observation", value='{"author": "Ann"}'),
        Turn(role="assistant", value="Ann wrote River.\n Next: conclusion."),
        Turn(role="conclusion", value="River, by Ann."),
    ]
    return Trajectory(tools=tools, instruction=conv[0].value, conversations=conv)
