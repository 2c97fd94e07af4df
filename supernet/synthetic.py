"""Small ImageNet-like JPEG folders made on the spot, for tests, node checks and data benchmarks.

A real ImageNet copy holds more than clean RGB JPEGs: some are grayscale or CMYK, one is a PNG with a
.JPEG name, and copies over a network filesystem can be truncated. ``make_image_folder`` writes such a
folder in both layouts the loaders take (class sub-folders, and PaddleClas list files beside them), so
the whole path from files to batches can run without the data set.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ODD_KINDS = ("gray", "cmyk", "png", "truncated")


def _image(rng: np.random.Generator, w: int, h: int):
    from PIL import Image

    # smooth colour fields plus noise: JPEG sizes close to real photos' (~110 KB at 500x375, quality 90)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / rng.uniform(5, 40) + rng.uniform(0, 6)) * 60 + rng.uniform(60, 190)
                     for _ in range(3)], -1) + np.cos(yy / rng.uniform(5, 40))[..., None] * 40
    noise = rng.normal(0, 18, (h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def make_image_folder(root: str | Path, classes: int = 2, train_per_class: int = 8, val_per_class: int = 4,
                      size: tuple[int, int] = (64, 48), odd: bool = True, seed: int = 0, quality: int = 90,
                      lists: bool = False) -> Path:
    """``root/train/<class>/*.JPEG`` and ``root/val/...``; with ``lists``, also ``train_list.txt`` /
    ``val_list.txt`` naming the same files (the loaders then read the lists). With ``odd``, the first class's first training images are grayscale, CMYK, a PNG named
    .JPEG and a truncated JPEG (the loaders decode the first three and replace the last)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("val", val_per_class)):
        lines = []
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                path = d / f"{split}_{c}_{i}.JPEG"
                img = _image(rng, *size)
                kind = ODD_KINDS[i] if odd and split == "train" and c == 0 and i < len(ODD_KINDS) else "rgb"
                if kind == "gray":
                    img.convert("L").save(path, "JPEG", quality=quality)
                elif kind == "cmyk":
                    img.convert("CMYK").save(path, "JPEG", quality=quality)
                elif kind == "png":
                    img.save(path, "PNG")
                else:
                    img.save(path, "JPEG", quality=quality)
                    if kind == "truncated":
                        data = path.read_bytes()
                        path.write_bytes(data[: len(data) // 3])
                lines.append(f"{split}/{d.name}/{path.name} {c}")
        if lists:
            (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    return root
