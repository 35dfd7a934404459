"""Curled pages with ground truth: synth_scans.py's pages bent in 3-D, then photographed or scanned.

``python bench/ocr/curl.py OUT_DIR [--pages 4] [--seed 1] [--shape edge|spine|wave|corner]
[--strength 0.06] [--capture phone|flatbed]`` writes OUT_DIR/pages/NNN.jpg|png, truth/NNN.txt and
manifest.tsv in synth_scans.py's layout, so corpus-style scoring works unchanged.

The bend is a real surface, not a 2-D ripple: the sheet lies on the desk along z(u, v) (height in
page widths), keeps its length along each row (arclength, so a raised edge is foreshortened), and
a pinhole camera ~1.3 page heights above sees raised paper displaced away from its axis. The
shapes: ``edge`` (one edge curling up, the last 20-45 % of the width), ``spine`` (a bound page
rising towards the gutter), ``wave`` (a sheet folded in two and opened, bulging in the middle),
``corner`` (an edge curl stronger at one end of the edge than the other). ``strength``: the
largest height as a share of the page width. ``phone`` adds synth_scans.py's photo degradations
(perspective, desk, uneven light, soft focus, 72-dpi JPEG); ``close`` is that photo taken so close
that the sheet fills the frame (no desk, so no outline to rectify by); ``flatbed`` looks from far above the
glass (almost orthographic) and darkens the paper that leaves it.
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402

SHAPES = ("edge", "spine", "wave", "corner")


def _synth():
    spec = importlib.util.spec_from_file_location("synth_scans", corpus.SYNTH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def height_field(shape: str, strength: float, w: int, h: int, rng: random.Random, grid: int = 64):
    """z on a coarse (grid x grid) lattice of the page, in pixels; the curled side chosen at random."""
    u = np.linspace(0, 1, grid)[None, :]
    v = np.linspace(0, 1, grid)[:, None]
    amp = strength * w
    if rng.random() < 0.5:
        u = 1 - u  # curl on the left instead of the right
    if shape == "edge":
        start = rng.uniform(0.35, 0.65)
        t = np.clip((u - start) / (1 - start), 0, 1)
        z = amp * t ** 2 + 0 * v
    elif shape == "spine":
        t = np.clip((u - 0.35) / 0.65, 0, 1)
        z = amp * t ** 3 * (1 + 0.3 * np.cos(np.pi * (v - 0.5))) / 1.3
    elif shape == "wave":
        z = amp * np.sin(np.pi * u) ** 2 * (1 - 0.4 * (v - 0.5) ** 2) + 0 * v
    else:  # corner
        start = rng.uniform(0.3, 0.6)
        t = np.clip((u - start) / (1 - start), 0, 1)
        ends = (0.35 + 0.65 * v) if rng.random() < 0.5 else (1 - 0.65 * v)
        z = amp * t ** 2 * ends
    return z.astype(np.float64)


def bend(page: np.ndarray, z_coarse: np.ndarray, *, camera_height: float, pad: int, desk: float):
    """The page lying on the surface z, seen from a camera straight above its centre."""
    h, w = page.shape[:2]
    grid = z_coarse.shape[0]
    us = np.linspace(0, w - 1, grid)
    vs = np.linspace(0, h - 1, grid)
    # Arclength: a row of paper keeps its length, so x advances by cos(slope) per unit of paper.
    dz = np.gradient(z_coarse, us, axis=1)
    cos = 1 / np.sqrt(1 + dz ** 2)
    x = np.concatenate([np.zeros((grid, 1)), np.cumsum((cos[:, 1:] + cos[:, :-1]) / 2 * np.diff(us), axis=1)], 1)
    x += (w - 1 - x[:, -1:]) / 2  # centre the shortened row
    cx, cy = (w - 1) / 2, (h - 1) / 2
    s = camera_height / (camera_height - z_coarse)
    fx = cx + (x - cx) * s + pad
    fy = cy + (vs[:, None] - cy) * s + pad
    # Invert the forward map (paper -> photo) by fixed-point iteration on the output grid.
    out_h, out_w = h + 2 * pad, w + 2 * pad
    small = (out_w // 8, out_h // 8)
    gy, gx = np.mgrid[0:small[1], 0:small[0]].astype(np.float32) * 8
    pu, pv = gx - pad, gy - pad
    scale_u, scale_v = (grid - 1) / (w - 1), (grid - 1) / (h - 1)
    fx32, fy32 = fx.astype(np.float32), fy.astype(np.float32)
    for _ in range(12):
        mu, mv = (pu * scale_u).astype(np.float32), (pv * scale_v).astype(np.float32)
        ex = cv2.remap(fx32, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ey = cv2.remap(fy32, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pu, pv = pu + (gx - ex), pv + (gy - ey)
    map_u = cv2.resize(pu, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    map_v = cv2.resize(pv, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    out = cv2.remap(page.astype(np.float32), map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=desk)
    # Shading: paper turned away from the light is darker (Lambert, light from above).
    shade = cv2.remap(cos.astype(np.float32), (map_u * scale_u).astype(np.float32),
                      (map_v * scale_v).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_u >= 0) & (map_u <= w - 1) & (map_v >= 0) & (map_v <= h - 1)
    out = np.where(inside, out * (0.35 + 0.65 * shade), out)
    return out


def photograph(a: np.ndarray, rng: random.Random, desk: float) -> np.ndarray:
    """synth_scans.photograph's degradations on an image that already has its desk around it."""
    h, w = a.shape[:2]
    jit = 0.04 * w
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + np.float32([[rng.uniform(-jit, jit), rng.uniform(-jit, jit)] for _ in range(4)])
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(a.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=desk)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(ang) * (xx / w - 0.5) + np.sin(ang) * (yy / h - 0.5)
    vignette = (xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2
    out *= 1.0 - rng.uniform(0.2, 0.4) * (ramp + 0.5) - 0.5 * vignette
    out = cv2.GaussianBlur(out, (5, 5), rng.uniform(0.8, 1.4))
    scale = 3000 / max(h, w)
    out = cv2.resize(out, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shape", choices=SHAPES, default="edge")
    ap.add_argument("--strength", type=float, default=0.06)
    ap.add_argument("--capture", choices=("phone", "close", "flatbed"), default="phone")
    ap.add_argument("--skip", type=int, default=0, help="start at this page of the text (other words)")
    args = ap.parse_args()
    synth = _synth()
    rng = random.Random(args.seed)
    text = sorted((corpus.SHARED / "seed").glob("*.txt"))[0]
    paras = synth.paragraphs(text.read_text(encoding="utf-8"))
    out = Path(args.out)
    (out / "pages").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    rows = ["page\ttruth\tprofile\tskew_deg\trotation\tdpi"]
    profile = dict(synth.PROFILES["phone" if args.capture == "phone" else "office"], skew=1.0, border=False,
                   speckle=100)
    n = 0
    for k, (img, lines) in enumerate(synth.typeset(paras, 300, 13.0, 78)):
        if k < args.skip:
            continue
        n += 1
        if n > args.pages:
            break
        arr, _, _ = synth.degrade(img, rng, profile)
        h, w = arr.shape
        z = height_field(args.shape, args.strength * rng.uniform(0.8, 1.2), w, h, rng)
        phone = args.capture in ("phone", "close")
        desk = float(rng.randrange(40, 110)) if phone else 250.0
        pad = int(0.09 * max(h, w)) if phone else int(0.02 * max(h, w))
        bent = bend(arr, z, camera_height=(1.3 if phone else 20.0) * h, pad=pad, desk=desk)
        if args.capture == "close":
            # The phone held close: the sheet fills the frame, no desk, so no outline to follow.
            page = photograph(bent, rng, desk)
            ph, pw = page.shape[:2]
            page = page[int(0.09 * ph):int(0.91 * ph), int(0.11 * pw):int(0.89 * pw)]
            # Written without a resolution: with the phone's 72-dpi header the page is taken for a
            # 72-dpi scan (its scale from the letters is issue 19's item 2, not this bench's question).
            name = f"{n:03d}.jpg"
            Image.fromarray(page).save(out / "pages" / name, quality=80)
        elif phone:
            page = photograph(bent, rng, desk)
            name, dpi = f"{n:03d}.jpg", 72
            Image.fromarray(page).save(out / "pages" / name, quality=80, dpi=(dpi, dpi))
        else:
            page = np.clip(bent, 0, 255).astype(np.uint8)
            name, dpi = f"{n:03d}.png", 300
            Image.fromarray(page).save(out / "pages" / name, dpi=(dpi, dpi))
        (out / "truth" / f"{n:03d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows.append(f"pages/{name}\ttruth/{n:03d}.txt\t{args.capture}-{args.shape}-{args.strength}\t0\t0\t300")
    (out / "manifest.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows) - 1} pages written to {out}")


if __name__ == "__main__":
    main()
