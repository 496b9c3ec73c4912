"""MediaPipe face mesh worker, run by the face mesh environment's Python (tools/install_face_mesh.sh), never
imported by the main environment: it needs only mediapipe, OpenCV and numpy (< 2), and not the mome package.

    tools/venv-mediapipe/bin/python mome/data/face_mesh_worker.py [--options JSON]

Protocol (binary, little-endian, on stdin / stdout; stdout is kept for it alone, anything else goes to stderr):

- the worker first writes one line of JSON: ``{"ready": true, "mediapipe": "<version>", "points": 478}``;
- then for each request ``b"FRAM"``, uint32 height, uint32 width, and ``height * width * 3`` bytes of an RGB
  uint8 image, it answers uint32 ``n`` (0: no face; else 478), uint32 ``route`` (how the face was found, see
  ``ROUTES``) and ``n * 3`` float32: the mesh points ``(x, y, z)`` in pixels of the image it was sent
  (``x`` right, ``y`` down, ``z`` depth on the scale of ``x``);
- ``b"RSET"`` forgets the face of the previous request (no answer); ``b"STOP"`` (or the end of stdin) ends it.

How a face is found, first hit wins (the mesh's own detector is a short-range one that misses faces filling
little of the picture, e.g. in 1280x720 frames):

1. ``tracked``: the mesh on a crop around the face of the previous request (same image size);
2. ``full``: the mesh on the whole image, when its longer side is at most ``full_frame_max_side`` pixels;
3. ``detected``: the full-range face detector (``model_selection=1``, faces up to about 5 m) on the whole image,
   then the mesh on a square crop around the most confident box;
4. ``tiles``: when the detector finds nothing on the whole image and its longer side is over
   ``full_frame_max_side``, the detector on overlapping square tiles (side half the shorter side of the image,
   at least 192 pixels; half-tile steps), then the mesh on a crop around the most confident boxes. The detector
   sees the whole image at 192x192, so a face under about 60 pixels wide in a 1280x720 frame shows it only a few
   pixels: measured on scikit-image's astronaut pasted into a 1280x720 canvas, the whole-frame detector found the
   face at 512 and 384 pixels of picture and missed it at 256 and 192, which the tiles found; the mesh on the
   whole frame missed it at every size.

Crops are ``crop_scale`` times the face box (clipped to the image) and resized so that their side is at least
``min_crop_side`` pixels. Mesh points of a crop are mapped back to the pixels of the whole image.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys

os.environ.setdefault("GLOG_minloglevel", "2")  # before mediapipe loads: keep its C++ logging quiet

import cv2  # noqa: E402
import mediapipe as mp  # noqa: E402
import numpy as np  # noqa: E402

ROUTES = {"none": 0, "tracked": 1, "full": 2, "detected": 3, "tiles": 4}
DEFAULTS = {
    "full_frame_max_side": 640,  # longer side (pixels) up to which the mesh is first tried on the whole image
    "min_detection_confidence": 0.5,  # face detector and the mesh's own detector
    "detection_crop_scale": 2.2,  # crop side / longer side of the face detector's box (it covers eyes to mouth)
    "tracking_crop_scale": 1.6,  # crop side / longer side of the previous mesh's bounding box (the whole face)
    "min_crop_side": 256,  # crops are upscaled to at least this side (pixels)
    "min_tile_side": 192,  # the detector's input size: smaller tiles gain nothing
    "max_boxes": 3,  # detector boxes (most confident first) the mesh is tried on
}


class Finder:
    def __init__(self, options: dict):
        self.o = {**DEFAULTS, **options}
        conf = self.o["min_detection_confidence"]
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=conf
        )
        self.detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=conf)
        self.previous = None  # (image shape, mesh points) of the last face found

    def _mesh(self, image: np.ndarray) -> np.ndarray | None:
        """478 (x, y, z) points in pixels of ``image`` (RGB uint8), or None."""
        result = self.mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        h, w = image.shape[:2]
        points = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], np.float64)
        return points * np.array([w, h, w])

    def _mesh_in_box(self, image: np.ndarray, box, scale: float) -> np.ndarray | None:
        """The mesh on a square crop ``scale`` times the box ``(x0, y0, x1, y1)``, in pixels of ``image``."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = box
        side = scale * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(max(0, np.floor(cx - side / 2))), int(max(0, np.floor(cy - side / 2)))
        right, bottom = int(min(w, np.ceil(cx + side / 2))), int(min(h, np.ceil(cy + side / 2)))
        if right - left < 8 or bottom - top < 8:
            return None
        crop = image[top:bottom, left:right]
        zoom = max(1.0, self.o["min_crop_side"] / max(crop.shape[:2]))
        if zoom > 1:
            crop = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        points = self._mesh(np.ascontiguousarray(crop))
        if points is None:
            return None
        return points / zoom + np.array([left, top, 0.0])

    def find(self, image: np.ndarray) -> tuple[np.ndarray | None, str]:
        h, w = image.shape[:2]
        if self.previous is not None and self.previous[0] == image.shape:
            p = self.previous[1]
            box = (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())
            points = self._mesh_in_box(image, box, self.o["tracking_crop_scale"])
            if points is not None:
                return points, "tracked"
        if max(h, w) <= self.o["full_frame_max_side"]:
            points = self._mesh(image)
            if points is not None:
                return points, "full"
        boxes = self._detect(image)
        route = "detected"
        if not boxes and max(h, w) > self.o["full_frame_max_side"]:
            boxes, route = self._detect_in_tiles(image), "tiles"
        for _, box in sorted(boxes, key=lambda b: -b[0])[: self.o["max_boxes"]]:
            points = self._mesh_in_box(image, box, self.o["detection_crop_scale"])
            if points is not None:
                return points, route
        return None, "none"

    def _detect(self, image: np.ndarray, left: int = 0, top: int = 0) -> list[tuple[float, tuple]]:
        """(score, (x0, y0, x1, y1)) face boxes of the detector on ``image``, in pixels shifted by (left, top)."""
        h, w = image.shape[:2]
        result = self.detector.process(np.ascontiguousarray(image))
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append(
                (
                    d.score[0],
                    (left + b.xmin * w, top + b.ymin * h, left + (b.xmin + b.width) * w, top + (b.ymin + b.height) * h),
                )
            )
        return boxes

    def _detect_in_tiles(self, image: np.ndarray) -> list[tuple[float, tuple]]:
        h, w = image.shape[:2]
        side = max(self.o["min_tile_side"], min(h, w) // 2)
        step = max(1, side // 2)

        def starts(length: int) -> list[int]:
            last = max(0, length - side)
            return sorted(set(list(range(0, last + 1, step)) + [last]))

        boxes = []
        for top in starts(h):
            for left in starts(w):
                boxes += self._detect(image[top : top + side, left : left + side], left, top)
        return boxes

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray | None, str]:
        points, route = self.find(image)
        self.previous = None if points is None else (image.shape, points)
        return points, route


def _read_exactly(stream, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError(f"stdin ended after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def main() -> int:
    p = argparse.ArgumentParser(description="MediaPipe face mesh worker (see the module docstring)")
    p.add_argument("--options", default="{}", help=f"JSON object overriding {sorted(DEFAULTS)}")
    options = json.loads(p.parse_args().options)
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        p.error(f"unknown options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    # stdout carries the protocol only: whatever else writes to file descriptor 1 goes to stderr
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    source = sys.stdin.buffer
    finder = Finder(options)
    out.write((json.dumps({"ready": True, "mediapipe": mp.__version__, "points": 478}) + "\n").encode())
    out.flush()
    while True:
        magic = source.read(4)
        if not magic or magic == b"STOP":
            return 0
        if magic == b"RSET":
            finder.previous = None
            continue
        if magic != b"FRAM":
            print(f"face_mesh_worker: bad request {magic!r}", file=sys.stderr)
            return 2
        h, w = struct.unpack("<II", _read_exactly(source, 8))
        image = np.frombuffer(_read_exactly(source, h * w * 3), np.uint8).reshape(h, w, 3)
        points, route = finder(image)
        if points is None:
            out.write(struct.pack("<II", 0, ROUTES[route]))
        else:
            out.write(struct.pack("<II", len(points), ROUTES[route]) + points.astype("<f4").tobytes())
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
