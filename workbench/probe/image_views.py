"""Views into a vision transformer: attention over patches drawn on the image, embeddings with thumbnails,
and a confusion matrix whose cells show the images in them.

Images come in as the data room gives them (PIL images, or uint8 arrays of shape (H, W) or (H, W, C)); the
model sees the normalized pixels the caller prepared, so a view never guesses the run's normalization.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from workbench.probe.confusion import confusion_matrix_figure
from workbench.probe.embeddings import class_marker, pca_projection
from workbench.probe.figure_widget import FigureWidget

LABELS = {"description_width": "initial"}


def as_array(image) -> np.ndarray:
    """A PIL image or an array as uint8 (H, W) for grayscale or (H, W, 3) for colour."""
    array = np.asarray(image.convert("L" if image.mode in ("L", "1", "I", "F") else "RGB")
                       if isinstance(image, Image.Image) else image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array


def thumbnail_uri(image, size: int = 64) -> str:
    """A PNG data URI of `image` scaled up (nearest neighbour, so 8x8 digits stay crisp) to `size` pixels."""
    picture = Image.fromarray(as_array(image))
    scale = max(1, size // max(picture.size))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# -- attention over patches -------------------------------------------------------------------------------------

@torch.no_grad()
def patch_attention(vit, pixels: torch.Tensor, *, layer: int = -1, head: int | None = None,
                    query: int | None = None) -> np.ndarray:
    """How much one query attends to each patch, as a (grid, grid) map over the image.

    `pixels` is one normalized image (C, H, W) or (1, C, H, W). `query` is a patch index (row-major), or
    None for the class token (the mean over patch queries when the ViT has none). `head` None averages
    the heads. Rows of attention sum to one over all tokens; the map shows the patches' share.
    """
    if pixels.dim() == 3:
        pixels = pixels.unsqueeze(0)
    config = vit.config
    layers = len(vit.blocks)
    if not -layers <= layer < layers:
        raise ValueError(f"layer {layer} is out of range for a ViT of {layers} layers")
    if head is not None and not 0 <= head < config.n_head:
        raise ValueError(f"head {head} is out of range: the ViT has {config.n_head} heads (0 to {config.n_head - 1})")
    if query is not None and not 0 <= query < config.num_patches:
        raise ValueError(f"query patch {query} is out of range: the image has {config.num_patches} patches")
    vit.eval()
    weights = vit(pixels.to(next(vit.parameters()).device), output_attentions=True).attentions[layer][0]
    weights = weights.mean(0) if head is None else weights[head]  # (T, T)
    prefix = config.num_prefix_tokens
    if query is not None:
        row = weights[prefix + query]
    else:
        row = weights[0] if prefix else weights.mean(0)
    return row[prefix:].float().cpu().numpy().reshape(config.grid_size, config.grid_size)


def patch_attention_figure(image, attention: np.ndarray, *, title: str = "attention over patches",
                           query: int | None = None) -> go.Figure:
    """The image with the attention map laid over it, one translucent cell per patch; the query patch outlined."""
    array = as_array(image)
    height, width = array.shape[:2]
    grid = attention.shape[0]
    cell = height / grid
    figure = go.Figure()
    if array.ndim == 2:
        figure.add_heatmap(z=array, colorscale="gray", showscale=False, hoverinfo="skip", zmin=0, zmax=255)
    else:
        figure.add_image(z=array, hoverinfo="skip")
    centres = (np.arange(grid) + 0.5) * cell - 0.5
    figure.add_heatmap(z=attention, x=centres, y=centres, colorscale="Hot", opacity=0.55, zmin=0,
                       colorbar=dict(title="attention"), customdata=np.arange(grid * grid).reshape(grid, grid),
                       hovertemplate="patch %{customdata}<br>attention %{z:.3f}<extra></extra>")
    if query is not None:
        r, c = divmod(query, grid)
        figure.add_shape(type="rect", x0=c * cell - 0.5, x1=(c + 1) * cell - 0.5, y0=r * cell - 0.5,
                         y1=(r + 1) * cell - 0.5, line=dict(color="cyan", width=3))
    figure.update_layout(title=title, template="plotly_white", height=460, width=520,
                         xaxis=dict(visible=False, range=[-0.5, width - 0.5]),
                         yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return figure


ALL = -1  # the dropdowns' "mean of heads" and "class token" (or "mean of patches")


class PatchAttentionWidget(widgets.VBox):
    """Pick an image, a layer, a head and a query (the class token or a patch): its attention on the image."""

    def __init__(self, vit, images: Sequence, pixels: torch.Tensor) -> None:
        if len(images) != len(pixels) or not len(images):
            raise ValueError(f"{len(images)} images and {len(pixels)} pixel tensors: give one of each, at least one")
        self.vit, self.images, self.pixels = vit, list(images), pixels
        config = vit.config
        self.image = widgets.IntSlider(0, 0, len(images) - 1, description="image", style=LABELS,
                                       continuous_update=False)
        self.layer = widgets.IntSlider(len(vit.blocks) - 1, 0, len(vit.blocks) - 1, description="layer",
                                       style=LABELS, continuous_update=False)
        # ALL, not None, for the summary choices: a Dropdown reads the value None as "nothing selected", so the
        # browser would show an empty box and the label None.
        self.head = widgets.Dropdown(options=[("mean of heads", ALL)] + [(str(h), h) for h in range(config.n_head)],
                                     value=ALL, description="head", style=LABELS)
        first = "class token" if config.num_prefix_tokens else "mean of patches"
        self.query = widgets.Dropdown(options=[(first, ALL)] + [(f"patch {p}", p) for p in range(config.num_patches)],
                                      value=ALL, description="query", style=LABELS)
        self.figure = FigureWidget(self._figure())
        for control in (self.image, self.layer, self.head, self.query):
            control.observe(self._redraw, names="value")
        super().__init__([widgets.HBox([self.image, self.layer]), widgets.HBox([self.head, self.query]), self.figure])

    def _figure(self) -> go.Figure:
        head, query = (None if value == ALL else value for value in (self.head.value, self.query.value))
        attention = patch_attention(self.vit, self.pixels[self.image.value], layer=self.layer.value,
                                    head=head, query=query)
        return patch_attention_figure(self.images[self.image.value], attention, query=query,
                                      title=f"layer {self.layer.value}, {self.head.label}, query {self.query.label}")

    def _redraw(self, change=None) -> None:
        new = self._figure()
        with self.figure.batch_update():
            self.figure.data[0].z = new.data[0].z
            self.figure.data[1].z = new.data[1].z
            self.figure.layout.shapes = new.layout.shapes
            self.figure.layout.title.text = new.layout.title.text


# -- embeddings with thumbnails ---------------------------------------------------------------------------------

@torch.no_grad()
def pooled_image_states(vit, pixels: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    """(N, d_model): each image's pooled state (the class token, or the mean over patches)."""
    if not len(pixels):
        raise ValueError("no images to embed")
    vit.eval()
    device = next(vit.parameters()).device
    return np.concatenate([vit(pixels[i:i + batch_size].to(device)).pooled.float().cpu().numpy()
                           for i in range(0, len(pixels), batch_size)])


def image_embedding_figure(projection: dict, labels: Sequence[int], label_names: list[str], *,
                           title: str = "pooled image states, PCA") -> go.Figure:
    coords = projection["coords"]
    figure = go.Figure()
    for k, name in enumerate(label_names):
        members = [i for i, label in enumerate(labels) if label == k]
        if members:
            figure.add_scatter(x=coords[members, 0], y=coords[members, 1], mode="markers", name=name,
                               marker=dict(**class_marker(k), size=7, line=dict(width=0.5, color="white")),
                               customdata=members,
                               hovertemplate=f"<b>{name}</b><br>image %{{customdata}}<extra></extra>")
    pc1, pc2 = projection["explained"][:2]
    figure.update_layout(title=title, xaxis_title=f"PC1 ({pc1:.0%} of variance)", yaxis_title=f"PC2 ({pc2:.0%})",
                         template="plotly_white", height=520)
    return figure


class ImageEmbeddingWidget(widgets.HBox):
    """The PCA scatter of pooled states; hovering over a point shows its image beside the plot."""

    def __init__(self, vit, images: Sequence, pixels: torch.Tensor, labels: Sequence[int],
                 label_names: list[str]) -> None:
        self.images, self.labels, self.label_names = list(images), list(labels), label_names
        self.projection = pca_projection(pooled_image_states(vit, pixels))
        self.figure = FigureWidget(image_embedding_figure(self.projection, self.labels, label_names))
        self.thumbnail = widgets.HTML("<i>hover over a point to see its image</i>")
        for trace in self.figure.data:
            trace.on_hover(self._hovered)
        super().__init__([self.figure, self.thumbnail])

    def _hovered(self, trace, points, state) -> None:
        if points.point_inds:
            self.show(trace.customdata[points.point_inds[0]])

    def show(self, index: int) -> str:
        """What hovering over image `index` does: its thumbnail and class beside the plot."""
        name = html.escape(self.label_names[self.labels[index]])
        self.thumbnail.value = (f'<figure><img src="{thumbnail_uri(self.images[index], 128)}" width="128" '
                                f'style="image-rendering: pixelated"><figcaption>image {index}: {name}'
                                "</figcaption></figure>")
        return self.thumbnail.value


# -- a confusion matrix of images -------------------------------------------------------------------------------

def montage(images: Sequence, *, columns: int = 2, size: int = 64) -> np.ndarray:
    """Up to columns x columns images tiled into one square uint8 picture (blank where a cell has fewer)."""
    tiles = [as_array(image) for image in images[: columns * columns]]
    if not tiles:
        raise ValueError("a montage needs at least one image")
    tile = size // columns
    colour = any(t.ndim == 3 for t in tiles)
    canvas = np.full((tile * columns, tile * columns, 3) if colour else (tile * columns, tile * columns), 255,
                     dtype=np.uint8)
    for i, array in enumerate(tiles):
        picture = Image.fromarray(array).convert("RGB" if colour else "L").resize((tile, tile), Image.NEAREST)
        r, c = divmod(i, columns)
        canvas[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = np.asarray(picture)
    return canvas


def image_confusion_figure(rows: list[dict], images: Sequence, label_names: list[str], *,
                           title: str = "confusion matrix (click a cell)") -> go.Figure:
    """The confusion matrix with, in each non-empty cell, a montage of its most confident images.

    `rows` are prediction rows (index, label, predicted, confidence); `images[row["index"]]` is each one's image.
    """
    n = len(label_names)
    matrix = [[0] * n for _ in range(n)]
    for row in rows:
        matrix[row["label"]][row["predicted"]] += 1
    figure = confusion_matrix_figure(matrix, label_names, title=title)
    for true in range(n):
        for predicted in range(n):
            cell = images_in_cell(rows, true, predicted)
            if cell:
                figure.add_layout_image(source=thumbnail_uri(montage([images[r["index"]] for r in cell])),
                                        xref="x", yref="y", x=predicted, y=true, sizex=0.8, sizey=0.8,
                                        xanchor="center", yanchor="middle", layer="above", opacity=0.9)
    figure.update_layout(height=max(480, 60 * n + 150), width=max(560, 60 * n + 220))
    figure.update_xaxes(type="category")
    figure.update_yaxes(type="category")
    return figure


def images_in_cell(rows: list[dict], true: int, predicted: int) -> list[dict]:
    """The rows of true class `true` predicted as `predicted`, most confident first."""
    return sorted((r for r in rows if r["label"] == true and r["predicted"] == predicted),
                  key=lambda r: -r["confidence"])


class ImageConfusionExplorer(widgets.VBox):
    """The image confusion matrix; clicking a cell shows all of its images with their confidence."""

    def __init__(self, rows: list[dict], images: Sequence, label_names: list[str], *, limit: int = 60) -> None:
        self.rows, self.images, self.label_names, self.limit = rows, list(images), label_names, limit
        self.figure = FigureWidget(image_confusion_figure(rows, self.images, label_names))
        self.figure.data[0].on_click(self._clicked)
        self.caption = widgets.HTML("<i>click a cell to see its images</i>")
        self.gallery = widgets.HTML()
        super().__init__([self.figure, self.caption, self.gallery])

    def _clicked(self, trace, points, selector) -> None:
        if points.xs and points.ys:
            self.select(self.label_names.index(points.ys[0]), self.label_names.index(points.xs[0]))

    def select(self, true: int, predicted: int) -> list[dict]:
        """What a click on cell (true, predicted) does: its images, most confident first."""
        cell = images_in_cell(self.rows, true, predicted)
        self.caption.value = (f"<b>{len(cell)}</b> images of <b>{html.escape(self.label_names[true])}</b> "
                              f"predicted <b>{html.escape(self.label_names[predicted])}</b>")
        tiles = [f'<figure style="display:inline-block;margin:4px"><img src="{thumbnail_uri(self.images[r["index"]])}"'
                 f' width="64" style="image-rendering: pixelated"><figcaption>#{r["index"]} '
                 f'p={r["confidence"]:.2f}</figcaption></figure>' for r in cell[: self.limit]]
        more = f"<i>and {len(cell) - self.limit} more</i>" if len(cell) > self.limit else ""
        self.gallery.value = ("".join(tiles) + more) or "<i>no images in this cell</i>"
        return cell


@torch.no_grad()
def image_prediction_rows(classifier, pixels: torch.Tensor, labels: Sequence[int], label_names: list[str], *,
                          batch_size: int = 256) -> list[dict]:
    """One row per image: its index, true and predicted class and the confidence, from `classifier(pixels)`,
    a callable returning (B, classes) logits (a fine-tuned module's forward on pixels)."""
    probabilities = torch.cat([classifier(pixels[i:i + batch_size]).float().softmax(-1)
                               for i in range(0, len(pixels), batch_size)])
    confidence, predicted = probabilities.max(-1)
    return [{"index": i, "label": int(label), "predicted": int(p), "confidence": float(c),
             "label_name": label_names[int(label)], "predicted_name": label_names[int(p)]}
            for i, (label, p, c) in enumerate(zip(labels, predicted, confidence, strict=True))]
