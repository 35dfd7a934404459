"""Small image operations the cleaning steps share: shrink a copy, threshold, write a file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def binarise(grey: np.ndarray) -> np.ndarray:
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


def shrink(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def write_image(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        import errno
        import shutil

        # OpenCV only answers False: tell a full disk (ENOSPC) apart from other failures.
        if shutil.disk_usage(path.parent).free < image.nbytes + 65536:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        raise OSError(f"cannot write {path}")
