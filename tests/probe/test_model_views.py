"""Next token, logit lens, attention and the playground: the numbers drawn are the numbers the model gives."""

import numpy as np
import pytest
import torch

from workbench.probe.attention import AttentionWidget, attention_figure, attention_grid_figure, attention_maps
from workbench.probe.lens import LogitLensWidget, logit_lens, logit_lens_figure, next_token_distribution
from workbench.probe.playground import (
    GenerationPlayground,
    coloured_html,
    sample_with_probabilities,
    token_probabilities,
)

PROMPT = "def add(a, b):"


def test_next_token_matches_the_model_output(tiny_model):
    model, tokenizer = tiny_model
    dist = next_token_distribution(model, tokenizer, PROMPT, k=10)
    probs = model(torch.tensor([tokenizer.encode(PROMPT)])).logits[0, -1].softmax(-1)
    expected = torch.topk(probs, 10)
    assert dist["ids"] == expected.indices.tolist()
    assert dist["probs"] == pytest.approx(expected.values.tolist(), rel=1e-5)
    assert dist["probs"] == sorted(dist["probs"], reverse=True)


def test_logit_lens_last_row_is_the_output_and_rows_are_the_layers(tiny_model):
    model, tokenizer = tiny_model
    lens = logit_lens(model, tokenizer, PROMPT)
    ids = torch.tensor([tokenizer.encode(PROMPT)])
    out = model(ids, output_hidden_states=True)
    assert lens["layers"] == ["embeddings", "layer 1", "layer 2"]
    assert len(lens["tokens"]) == ids.shape[1] and all(len(r) == ids.shape[1] for r in lens["top_probs"])
    final = out.logits[0].softmax(-1).max(-1)
    assert lens["top_ids"][-1] == final.indices.tolist()
    assert lens["top_probs"][-1] == pytest.approx(final.values.tolist(), rel=1e-5)
    middle = model.logits_from_hidden(out.hidden_states[1])[0].softmax(-1).max(-1)
    assert lens["top_ids"][1] == middle.indices.tolist()
    figure = logit_lens_figure(lens)
    heat = figure.data[0]
    assert np.allclose(np.array(heat.z), np.array(lens["top_probs"]))
    assert [list(r) for r in heat.text] == lens["top_tokens"]
    assert list(heat.y) == lens["layers"] and len(heat.x) == len(lens["tokens"])


def test_an_empty_prompt_is_a_clear_error(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(ValueError, match="prompt is empty"):
        logit_lens(model, tokenizer, "")


def test_logit_lens_widget_redraws_when_the_prompt_changes(tiny_model):
    model, tokenizer = tiny_model
    widget = LogitLensWidget(model, tokenizer, prompt="abc")
    assert len(widget.lens_figure.data[0].x) == 3
    widget.prompt.value = PROMPT
    assert len(widget.lens_figure.data[0].x) == len(PROMPT)
    assert np.allclose(np.array(widget.lens_figure.data[0].z), logit_lens(model, tokenizer, PROMPT)["top_probs"])
    assert list(widget.next_token.data[0].y) == next_token_distribution(model, tokenizer, PROMPT)["tokens"]
    widget.prompt.value = ""
    assert "empty" in widget.message.value


def test_attention_maps_are_causal_distributions_and_drawn_as_computed(tiny_model):
    model, tokenizer = tiny_model
    maps = attention_maps(model, tokenizer, PROMPT)
    T = len(PROMPT)
    assert maps["weights"].shape == (2, 2, T, T)
    assert np.allclose(maps["weights"].sum(-1), 1, atol=1e-5)
    assert np.allclose(np.triu(maps["weights"], k=1), 0)
    assert np.allclose(np.array(attention_figure(maps, 1, 0).data[0].z), maps["weights"][1, 0])
    grid = attention_grid_figure(maps)
    assert len(grid.data) == 4 and np.allclose(np.array(grid.data[3].z), maps["weights"][1, 1])
    with pytest.raises(ValueError, match="layer 5 is out of range: the model has layers 0..1"):
        attention_figure(maps, 5, 0)


def test_attention_sliders_choose_the_head_drawn(tiny_model):
    model, tokenizer = tiny_model
    widget = AttentionWidget(model, tokenizer, prompt=PROMPT)
    widget.layer.value, widget.head.value = 1, 1
    assert np.allclose(np.array(widget.figure.data[0].z), widget.maps["weights"][1, 1])
    assert widget.figure.layout.title.text == "attention, layer 1 head 1"
    widget.prompt.value = "abc"
    assert np.array(widget.figure.data[0].z).shape == (3, 3)
    assert np.array(widget.grid.data[0].z).shape == (3, 3)


def test_token_probabilities_are_the_model_probabilities_of_each_next_token(tiny_model):
    model, tokenizer = tiny_model
    ids = tokenizer.encode("abcdef")
    rows = token_probabilities(model, tokenizer, ids, 2)
    probs = model(torch.tensor([ids])).logits[0].softmax(-1)
    assert [r["position"] for r in rows] == [2, 3, 4, 5]
    for r in rows:
        assert r["prob"] == pytest.approx(float(probs[r["position"] - 1, ids[r["position"]]]), rel=1e-5)
        assert len(r["alternatives"]) == 10
        assert r["alternatives"][0][1] == pytest.approx(float(probs[r["position"] - 1].max()), rel=1e-5)


def test_sampling_with_probabilities_follows_the_seed_and_colours_every_token(tiny_model):
    model, tokenizer = tiny_model
    a = sample_with_probabilities(model, tokenizer, "def ", max_new_tokens=12, seed=3)
    b = sample_with_probabilities(model, tokenizer, "def ", max_new_tokens=12, seed=3)
    assert a == b and len(a["tokens"]) == 12 and a["prompt"] == "def "
    html = coloured_html(a)
    assert html.count('class="wb-token"') == 12
    assert f'title="p={a["tokens"][0]["prob"]:.3f}' in html


def test_playground_controls_resample_and_the_token_slider_charts_alternatives(tiny_model):
    model, tokenizer = tiny_model
    widget = GenerationPlayground(model, tokenizer, prompt="def ", max_new_tokens=10)
    first = widget.output.value
    assert widget.token.max == 9
    widget.seed.value = 7
    assert widget.output.value != first
    widget.token.value = 4
    row = widget.sample["tokens"][4]
    assert list(widget.alternatives.data[0].x) == [p for _, p in row["alternatives"]]
    assert f"position {row['position']}" in widget.alternatives.layout.title.text
    widget.max_new_tokens.value = 5
    assert widget.token.max == 4 and widget.output.value.count('class="wb-token"') == 5
    widget.temperature.value = 0.0  # greedy: any seed gives the same text
    greedy = widget.output.value
    widget.seed.value = 8
    assert widget.output.value == greedy


def test_typing_a_prompt_generates_once_not_once_per_keystroke(tiny_model):
    model, tokenizer = tiny_model
    widget = GenerationPlayground(model, tokenizer, prompt="def ", max_new_tokens=5)
    assert widget.generations == 1
    # The browser reports the prompt when the box loses focus (or a slider when let go), not per keystroke:
    # typing "def add(" then leaving the box is one change of value, as the frontend sends it.
    controls = [widget.prompt, widget.temperature, widget.top_k, widget.top_p, widget.max_new_tokens, widget.seed]
    assert all(control.continuous_update is False for control in controls)
    widget.prompt.set_state({"value": "def add("})
    assert widget.generations == 2 and widget.sample["prompt"] == "def add("
    widget.prompt.value = "def add("  # the same text again: nothing to do
    widget.seed.value = 4
    assert widget.generations == 3


def test_widget_labels_are_shown_at_full_width(tiny_model, labelled_controls):
    model, tokenizer = tiny_model
    views = [GenerationPlayground(model, tokenizer, max_new_tokens=3), LogitLensWidget(model, tokenizer),
             AttentionWidget(model, tokenizer, prompt="abc")]
    controls = [control for view in views for control in labelled_controls(view)]
    assert {"temperature", "top-k (0=off)", "new tokens", "layer", "head"} <= {c.description for c in controls}
    cut = [c.description for c in controls if c.style.description_width != "initial"]
    assert cut == []  # the default width cuts "temperature" to "temperat…"
