"""A tiny stand-in for CelebA in its real layout and file formats (CelebA cannot be shipped).

``write_fake_celeba(folder)`` draws cartoon faces as 178 x 218 JPEGs in
``folder/img_align_celeba/`` and writes ``list_attr_celeba.txt`` (image count, the 40 attribute
names, ``name.jpg -1  1 ...`` rows) and ``list_eval_partition.txt`` (``name.jpg 0|1|2``, the
splits contiguous in file order as in CelebA). ``Smiling`` draws a wide, bright open mouth
over the lower face (else a thin dark line), ``Eyeglasses`` dark frames, ``Male`` short dark hair
(else long light hair), so a classifier and an autoencoder have something to learn even when
blurred; the other attributes are random.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["NAMES", "write_fake_celeba"]

NAMES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
"""CelebA's 40 attribute names, in the order of ``list_attr_celeba.txt``."""


def _face(attributes: dict[str, bool], rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(40, 200, 3))
    image = Image.new("RGB", (178, 218), background)
    draw = ImageDraw.Draw(image)
    dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
    hair = (40, 30, 20) if attributes["Male"] else (200, 170, 90)
    top = 45 if attributes["Male"] else 35
    draw.rectangle((44 + dx, top + dy, 134 + dx, 150 + dy if not attributes["Male"] else 90 + dy),
                   fill=hair)  # fmt: skip
    skin = tuple(int(v) for v in rng.integers(150, 235, 3))
    draw.ellipse((54 + dx, 60 + dy, 124 + dx, 170 + dy), fill=skin)
    for x in (72, 106):
        draw.ellipse((x - 5 + dx, 98 + dy, x + 5 + dx, 106 + dy), fill=(20, 20, 20))
        if attributes["Eyeglasses"]:
            draw.rectangle((x - 12 + dx, 92 + dy, x + 12 + dx, 112 + dy), outline=(0, 0, 0),
                           width=3)  # fmt: skip
    if attributes["Smiling"]:
        draw.chord((58 + dx, 110 + dy, 120 + dx, 165 + dy), 0, 180, fill=(250, 250, 250),
                   outline=(150, 20, 20), width=4)  # fmt: skip
    else:
        draw.line((76 + dx, 140 + dy, 102 + dx, 140 + dy), fill=(90, 20, 20), width=4)
    return image


def write_fake_celeba(folder: str | Path, count: int = 48, seed: int = 0) -> Path:
    """Writes a CelebA-layout directory of ``count`` faces (60% train, 20% val, 20% test)
    into ``folder`` and returns it."""
    folder, rng = Path(folder), np.random.default_rng(seed)
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    values = rng.random((count, len(NAMES))) < 0.3
    values[:, NAMES.index("Smiling")] = np.arange(count) % 2 == 0  # balanced in every split
    rows, partition = [], []
    bounds = (int(0.6 * count), int(0.8 * count))
    for index in range(count):
        name = f"{index + 1:06d}.jpg"
        attributes = dict(zip(NAMES, values[index].tolist(), strict=True))
        _face(attributes, rng).save(folder / "img_align_celeba" / name, quality=90)
        rows.append(name + "".join(f" {1 if v else -1:2d}" for v in values[index]))
        partition.append(f"{name} {sum(index >= b for b in bounds)}")
    header = f"{count}\n{' '.join(NAMES)} \n"
    (folder / "list_attr_celeba.txt").write_text(header + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return folder
