"""A drawn talking face: its 68 landmarks and its pixels, from one geometry.

The face lives in *face units*: pixels of the 224x224 crop at scale 1, origin at the midpoint
between the eyes, x to the image right, y down. A :class:`FaceStyle` holds the speaker's
proportions and colours and where the face sits on the canvas (a similarity transform); a frame's
*state* is the five mouth parameters of :mod:`visemes` plus a blink amount. Every drawn part
(eyes, brows, nose, lips, jaw) is defined by curves in face units, and the landmarks are points on
those same curves, so points 48-67 sit on the drawn lips in every frame.

Rendering is vectorised numpy: each part is blended (soft edges from an approximate signed
distance) over the pixels of its bounding box only. A clip's canvas (a little larger than the crop)
is drawn once without lips; each frame then pulls the chin down by the jaw opening (a vertical warp
of the lower face, the jaw landmarks moved by the same field), draws the lips into that box, redraws
the eyes while they blink, and is cut out of the canvas at a small moving offset, which gives the
head motion of a face tracker's crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mome.data.synth.visemes import MOUTH_PARAMS, TARGETS

CROP = 224  # output frame size (LRS3 face crops)
MARGIN = 10  # canvas border on each side: room for head motion
CANVAS = CROP + 2 * MARGIN
STATE = (*MOUTH_PARAMS, "blink")  # columns of a per-frame state row
OPEN, WIDTH, ROUND, TEETH, TONGUE, BLINK = range(len(STATE))

Colour = tuple[float, float, float]


@dataclass(frozen=True)
class FaceStyle:
    # placement: canvas position of the face origin, pixels per face unit, in-plane rotation
    centre: tuple[float, float] = (CANVAS / 2, MARGIN + 96.0)
    scale: float = 1.0
    angle: float = 0.0  # radians
    # head (face units)
    face_hw: float = 62.0  # half width at the cheekbones
    face_cy: float = 5.0  # y of the head ellipse's centre
    face_top: float = 102.0  # head ellipse: centre to crown
    chin: float = 95.0  # eye line to chin
    jaw_power: float = 2.3  # superellipse exponent of the lower face (2 = round, larger = squarer)
    neck_hw: float = 30.0
    hairline: float = -52.0
    hair_volume: float = 6.0
    long_hair: bool = False
    # eyes and brows
    eye_dx: float = 26.0  # eye centres at x = +-eye_dx, y = 0
    eye_hw: float = 12.0
    eye_hh: float = 4.8
    iris_r: float = 4.6
    gaze: tuple[float, float] = (0.0, 0.0)
    brow_y: float = -14.0
    brow_thick: float = 3.5
    brow_arch: float = 3.0
    # nose and mouth
    nose_y: float = 40.0  # nose tip
    nose_hw: float = 14.0  # half width of the nostril wings
    mouth_y: float = 59.0  # lip line at rest
    mouth_hw: float = 21.0
    lip_up: float = 6.5  # lip thickness at rest
    lip_low: float = 8.0
    max_open: float = 24.0  # inner lip distance at open = 1
    # colours, RGB in [0, 1]
    skin: Colour = (0.85, 0.66, 0.55)
    lip: Colour = (0.72, 0.40, 0.40)
    hair: Colour = (0.20, 0.14, 0.10)
    iris: Colour = (0.35, 0.22, 0.12)
    shirt: Colour = (0.20, 0.30, 0.50)
    bg_top: Colour = (0.55, 0.60, 0.65)
    bg_bottom: Colour = (0.30, 0.32, 0.36)
    # lighting: a linear gradient over the face (direction in face units) and an overall gain
    light: tuple[float, float] = (-0.5, -0.3)
    light_strength: float = 0.15
    brightness: float = 1.0


# --------------------------------------------------------------------------------------------------
# Geometry shared by landmarks and rendering (numpy broadcasting: parameters may be scalars or (T, 1))
# --------------------------------------------------------------------------------------------------
@dataclass
class _Mouth:
    hw: np.ndarray  # outer half width
    hw_in: np.ndarray  # inner (opening) half width
    up: np.ndarray  # upper inner lip rise above the lip line at the centre
    lo: np.ndarray  # lower inner lip drop
    t_up: np.ndarray  # lip thicknesses
    t_lo: np.ndarray
    y: float  # lip line
    teeth: np.ndarray  # visible upper-teeth height
    tongue: np.ndarray  # visible tongue height

    @staticmethod
    def of(st: FaceStyle, state: np.ndarray) -> _Mouth:
        o, w, r = state[..., OPEN], state[..., WIDTH], state[..., ROUND]
        hw = st.mouth_hw * (0.82 + 0.36 * w - 0.22 * r)
        opening = st.max_open * o
        return _Mouth(
            hw=hw,
            hw_in=hw * (0.9 - 0.3 * r),
            up=0.3 * opening,
            lo=0.7 * opening,
            t_up=st.lip_up * (1 + 0.35 * r),
            t_lo=st.lip_low * (1 + 0.25 * r),
            y=st.mouth_y,
            teeth=state[..., TEETH] * np.minimum(0.45 * opening + 1.0, 6.0),
            tongue=state[..., TONGUE] * 0.45 * opening,
        )

    @staticmethod
    def _profile(x, hw, power=1.0):
        return np.clip(1 - (x / np.maximum(hw, 1e-3)) ** 2, 0, 1) ** (0.5 * power)

    def curves(self, x):
        """Upper inner, lower inner, upper outer and lower outer lip edges (y) at offsets x."""
        inner, outer = self._profile(x, self.hw_in), self._profile(x, self.hw, 0.7)
        bow = 1 - 0.25 * np.exp(-((x / (0.17 * self.hw)) ** 2))  # the dip of the cupid's bow
        upper_inner, lower_inner = self.y - self.up * inner, self.y + self.lo * inner
        return (upper_inner, lower_inner, upper_inner - self.t_up * outer * bow, lower_inner + self.t_lo * outer)

    @property
    def jaw_drop(self):
        return 0.55 * self.lo


def _eye_lid(st: FaceStyle, x, blink):
    """Half opening of an eye at offset x from its centre (a lens shape)."""
    return st.eye_hh * (1 - blink) * np.clip(1 - (x / st.eye_hw) ** 2, 0, 1) ** 0.75


def _brow_top(st: FaceStyle, x):
    """Upper edge of the brow at offset x from the brow's centre (brow half length 17)."""
    return st.brow_y - st.brow_arch * np.clip(1 - (x / 17.0) ** 2, 0, 1) - 0.5 * st.brow_thick


def _brow_thickness(st: FaceStyle, x):
    return st.brow_thick * (1 - 0.45 * np.clip(np.abs(x) / 17.0, 0, 1) ** 2)


def _brow_centre(st: FaceStyle) -> float:
    return st.eye_dx + 1.0


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _max_jaw_drop(st: FaceStyle) -> float:
    return 0.55 * 0.7 * st.max_open


def jaw_weight(st: FaceStyle, u, v):
    """Share of the jaw drop by which the point (u, v) (face units) moves down: 1 on the chin, fading
    towards the sides of the face, up to the lip line and down the neck."""
    wu = np.clip(1 - (u / (0.85 * st.face_hw)) ** 2, 0, 1) ** 1.5
    top, plateau = st.mouth_y + 4, st.chin - 12
    low, end = st.chin + _max_jaw_drop(st) + 3, st.chin + _max_jaw_drop(st) + 21
    return wu * _smoothstep((v - top) / (plateau - top)) * _smoothstep((end - v) / (end - low))


def to_canvas(st: FaceStyle, pts: np.ndarray) -> np.ndarray:
    c, s = math.cos(st.angle), math.sin(st.angle)
    u, v = pts[..., 0], pts[..., 1]
    return np.stack([st.centre[0] + st.scale * (c * u - s * v), st.centre[1] + st.scale * (s * u + c * v)], -1)


def to_face(st: FaceStyle, x, y):
    c, s = math.cos(st.angle), math.sin(st.angle)
    dx, dy = x - st.centre[0], y - st.centre[1]
    return (c * dx + s * dy) / st.scale, (-s * dx + c * dy) / st.scale


def _jaw_shift(st: FaceStyle, x, y, drop):
    """Downward canvas shift (pixels) at canvas point (x, y) for a jaw drop in face units."""
    return drop * st.scale * jaw_weight(st, *to_face(st, x, y))


def landmarks(st: FaceStyle, states: np.ndarray) -> np.ndarray:
    """The 68 iBUG points ``(T, 68, 2)`` in canvas pixels for per-frame states ``(T, 6)``."""
    states = np.asarray(states, np.float64)
    T = len(states)
    pts = np.zeros((T, 68, 2))
    m = _Mouth.of(st, states[:, None, :])
    # jaw 0..16: the lower superellipse from one ear, round the chin, to the other (at rest; moved below)
    theta = np.pi * np.arange(17) / 16
    c, s = np.cos(theta), np.sin(theta)
    ex = 2 / st.jaw_power
    pts[:, 0:17, 0] = -st.face_hw * np.sign(c) * np.abs(c) ** ex
    pts[:, 0:17, 1] = st.face_cy + (st.chin - st.face_cy) * np.abs(s) ** ex
    # brows: 17..21 image left (outer to inner), 22..26 image right (inner to outer)
    bx = np.linspace(-15, 15, 5)
    brow_y = _brow_top(st, bx) + 0.5 * _brow_thickness(st, bx)
    pts[:, 17:22] = np.stack([-_brow_centre(st) + bx, brow_y], 1)
    pts[:, 22:27] = np.stack([_brow_centre(st) + bx, brow_y[::-1]], 1)
    # nose: bridge 27..30 from between the eyes to the tip, bottom 31..35 left to right
    pts[:, 27:31] = np.stack([np.zeros(4), np.linspace(0, st.nose_y, 4)], 1)
    pts[:, 31:36] = np.stack(
        [st.nose_hw * np.array([-0.7, -0.35, 0, 0.35, 0.7]), st.nose_y + np.array([1.0, 3.0, 4.0, 3.0, 1.0])], 1
    )
    # eyes: 36..41 image left (outer corner, upper lid x2, inner corner, lower lid x2), 42..47 the same
    # order mirrored (inner corner first)
    third = st.eye_hw / 3
    lid = _eye_lid(st, third, states[:, BLINK : BLINK + 1])  # (T, 1)
    for first, cx, xs in ((36, -st.eye_dx, (-3, -1, 1, 3, 1, -1)), (42, st.eye_dx, (-3, -1, 1, 3, 1, -1))):
        pts[:, first : first + 6, 0] = cx + np.array(xs) * third
        pts[:, first : first + 6, 1] = np.array([0, -1, -1, 0, 1, 1]) * lid
    # outer lip 48..59: left corner, upper lip to the right corner (54), lower lip back
    x = np.array([-1.0, -0.62, -0.3, 0.0, 0.3, 0.62, 1.0, 0.62, 0.3, 0.0, -0.3, -0.62]) * m.hw
    pts[:, 48:60, 0] = x
    pts[:, 48, 1] = pts[:, 54, 1] = st.mouth_y
    pts[:, 49:54, 1] = m.curves(x[:, 1:6])[2]
    pts[:, 55:60, 1] = m.curves(x[:, 7:12])[3]
    # inner lip 60..67: left corner, upper 61..63, right corner (64), lower 65..67
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.5, 0.0, -0.5]) * m.hw_in
    pts[:, 60:68, 0] = x
    pts[:, 60, 1] = pts[:, 64, 1] = st.mouth_y
    pts[:, 61:64, 1] = m.curves(x[:, 1:4])[0]
    pts[:, 65:68, 1] = m.curves(x[:, 5:8])[1]
    out = to_canvas(st, pts)
    # the jaw points follow the warp that pulls the chin down: solve p = q + shift(p) by iteration
    q = out[:, 0:17].copy()
    drop = m.jaw_drop  # (T, 1)
    for _ in range(4):
        out[:, 0:17, 1] = q[..., 1] + _jaw_shift(st, out[:, 0:17, 0], out[:, 0:17, 1], drop)
    return out.astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
Box = tuple[int, int, int, int]  # canvas rows y0:y1, columns x0:x1


def _soft(distance_px):
    """Coverage of a pixel whose centre lies ``distance_px`` inside (+) or outside (-) an edge."""
    return np.clip(0.5 + distance_px, 0.0, 1.0)


def _canvas_box(st: FaceStyle, u0: float, u1: float, v0: float, v1: float, within: Box = (0, CANVAS, 0, CANVAS)) -> Box:
    """The canvas pixels (clipped to ``within``) covering a face-unit rectangle; may be empty."""
    c, s = math.cos(st.angle), math.sin(st.angle)
    xs = [st.centre[0] + st.scale * (c * u - s * v) for u in (u0, u1) for v in (v0, v1)]
    ys = [st.centre[1] + st.scale * (s * u + c * v) for u in (u0, u1) for v in (v0, v1)]
    return (
        max(math.floor(min(ys)) - 1, within[0]),
        min(math.ceil(max(ys)) + 2, within[1]),
        max(math.floor(min(xs)) - 1, within[2]),
        min(math.ceil(max(xs)) + 2, within[3]),
    )


class _Painter:
    """Blends shapes given in face units into the canvas box ``box``; ``img`` holds unlit colours."""

    def __init__(self, st: FaceStyle, box: Box):
        self.st, self.box = st, box
        y0, y1, x0, x1 = box
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        xs = np.arange(x0, x1, dtype=np.float32)[None, :]
        self.u, self.v = to_face(st, xs, ys)
        self.px = st.scale  # pixels per face unit
        self.gain = st.brightness * (1 + st.light_strength * (self.u * st.light[0] + self.v * st.light[1]) / 120)
        t = (ys / CANVAS)[..., None]
        bg = (1 - t) * np.array(st.bg_top, np.float32) + t * np.array(st.bg_bottom, np.float32)
        self.img = np.ascontiguousarray(np.broadcast_to(bg, (y1 - y0, x1 - x0, 3)), dtype=np.float32)

    def area(self, u0: float, u1: float, v0: float, v1: float):
        """(slices, u, v) of the box's pixels covering the face-unit rectangle, or None."""
        a0, a1, b0, b1 = _canvas_box(self.st, u0, u1, v0, v1, self.box)
        if a0 >= a1 or b0 >= b1:
            return None
        y0, _, x0, _ = self.box
        sl = (slice(a0 - y0, a1 - y0), slice(b0 - x0, b1 - x0))
        return sl, self.u[sl], self.v[sl]

    def blend(self, sl, alpha, colour) -> None:
        target = self.img[sl]
        target += alpha[..., None] * (np.asarray(colour, np.float32) - target)

    def ellipse(self, u, v, cu, cv, a, b):
        """Coverage of an axis-aligned ellipse."""
        r = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
        return _soft((1 - r) * min(a, b) * self.px)

    def lit(self) -> np.ndarray:
        return np.clip(self.img * self.gain[..., None], 0, 1)


def _draw_head(p: _Painter, st: FaceStyle) -> None:
    skin = np.array(st.skin, np.float32)
    if st.long_hair and (a := p.area(-st.face_hw - 16, st.face_hw + 16, -st.face_top - 10, st.chin)):
        sl, u, v = a
        alpha = p.ellipse(u, v, 0, st.face_cy - 4, st.face_hw + 15, st.face_top + 12)
        p.blend(sl, alpha * _soft((st.chin - 20 - v) * p.px), np.array(st.hair, np.float32) * 0.8)
    # shoulders and shirt, then the neck with a V collar
    if a := p.area(-200, 200, st.chin + 10, 400):
        sl, u, v = a
        p.blend(sl, _soft((v - (st.chin + 20 + 0.0025 * u**2)) * p.px), st.shirt)
    if a := p.area(-st.neck_hw - 1, st.neck_hw + 1, st.face_cy, 400):
        sl, u, v = a
        alpha = _soft((st.neck_hw - np.abs(u)) * p.px) * _soft((st.chin + 30 + 0.6 * np.abs(u) - v) * p.px)
        p.blend(sl, alpha, skin * 0.78)
    for side in (-1, 1):  # ears
        if a := p.area(side * st.face_hw - 10, side * st.face_hw + 10, -8, 32):
            sl, u, v = a
            p.blend(sl, p.ellipse(u, v, side * (st.face_hw - 1), 12, 7.5, 15), skin * 0.88)
    # face: upper half an ellipse, lower half a superellipse (the jaw)
    if a := p.area(-st.face_hw - 1, st.face_hw + 1, st.face_cy - st.face_top - 1, st.chin + 2):
        sl, u, v = a
        lower = v > st.face_cy
        b = np.where(lower, st.chin - st.face_cy, st.face_top)
        power = np.where(lower, st.jaw_power, 2.0)
        r = ((np.abs(u) / st.face_hw) ** power + (np.abs(v - st.face_cy) / b) ** power) ** (1 / power)
        alpha = _soft((1 - r) * np.minimum(st.face_hw, b) * p.px)
        p.blend(sl, alpha, skin * (1 - 0.22 * np.clip(r, 0, 1) ** 4)[..., None])
    top = st.face_cy - st.face_top - st.hair_volume  # hair on top
    if a := p.area(-st.face_hw - st.hair_volume - 1, st.face_hw + st.hair_volume + 1, top - 1, st.hairline + 45):
        sl, u, v = a
        alpha = p.ellipse(u, v, 0, st.face_cy, st.face_hw + st.hair_volume, st.face_top + st.hair_volume)
        p.blend(sl, alpha * _soft((st.hairline + 0.012 * u**2 - v) * p.px), st.hair)


def _draw_eyes(p: _Painter, st: FaceStyle, blink: float) -> None:
    skin = np.array(st.skin, np.float32)
    for side in (-1, 1):
        cx = side * st.eye_dx
        if a := p.area(cx - st.eye_hw - 4, cx + st.eye_hw + 4, -st.eye_hh - 4, st.eye_hh + 4):
            sl, u, v = a
            p.blend(sl, 0.5 * p.ellipse(u, v, cx, -0.5, st.eye_hw + 3, st.eye_hh + 3.5), skin * 0.8)
            half = _eye_lid(st, u - cx, blink)
            inside = _soft(np.minimum(half - np.abs(v), st.eye_hw - np.abs(u - cx)) * p.px)
            p.blend(sl, inside, (0.93, 0.91, 0.88))
            gx, gy = cx + st.gaze[0], st.gaze[1]
            p.blend(sl, inside * p.ellipse(u, v, gx, gy, st.iris_r, st.iris_r), st.iris)
            p.blend(sl, inside * p.ellipse(u, v, gx, gy, 0.45 * st.iris_r, 0.45 * st.iris_r), (0.05, 0.04, 0.04))
            lid_line = _soft(np.minimum(v + half + 1.3, 0.3 - half - v) * p.px) * _soft(
                (st.eye_hw + 0.5 - np.abs(u - cx)) * p.px
            )
            p.blend(sl, lid_line, skin * 0.3)
        bc = side * _brow_centre(st)
        if a := p.area(bc - 18, bc + 18, st.brow_y - st.brow_arch - st.brow_thick - 1, st.brow_y + 4):
            sl, u, v = a
            x = u - bc
            top = _brow_top(st, x)
            alpha = _soft(np.minimum(v - top, top + _brow_thickness(st, x) - v) * p.px) * _soft((17 - np.abs(x)) * p.px)
            p.blend(sl, 0.9 * alpha, st.hair)


def _draw_nose(p: _Painter, st: FaceStyle) -> None:
    skin = np.array(st.skin, np.float32)
    shadow_side = 1.0 if st.light[0] < 0 else -1.0
    if a := p.area(-8, 8, 4, st.nose_y):
        sl, u, v = a
        band = _soft((2.2 - np.abs(u - shadow_side * 5.5)) * p.px) * _soft((v - 6) * p.px)
        p.blend(sl, 0.25 * band, skin * 0.7)
    if a := p.area(-st.nose_hw - 2, st.nose_hw + 2, st.nose_y - 10, st.nose_y + 6):
        sl, u, v = a
        for side in (-1, 1):
            p.blend(sl, 0.5 * p.ellipse(u, v, side * (st.nose_hw - 4.5), st.nose_y - 1, 4.8, 4.2), skin * 0.86)
        p.blend(sl, 0.35 * p.ellipse(u, v, 0, st.nose_y - 2.5, 6.5, 5.0), np.minimum(skin * 1.12, 1))
        for side in (-1, 1):
            p.blend(sl, 0.85 * p.ellipse(u, v, side * 5.0, st.nose_y + 2.2, 3.0, 1.6), skin * 0.3)


def _draw_mouth(p: _Painter, st: FaceStyle, m: _Mouth) -> None:
    hw, hw_in = float(m.hw), float(m.hw_in)
    a = p.area(-hw - 1, hw + 1, st.mouth_y - float(m.up + m.t_up) - 2, st.mouth_y + float(m.lo + m.t_lo) + 2)
    if a is None:
        return
    sl, u, v = a
    ui, li, uo, lo = m.curves(u)
    lips = _soft(np.minimum(v - uo, lo - v) * p.px) * _soft((hw - np.abs(u)) * p.px)
    lip = np.array(st.lip, np.float32)
    p.blend(sl, lips, np.where((v > st.mouth_y)[..., None], np.minimum(lip * 1.12, 1), lip))
    inner = _soft(np.minimum(v - ui, li - v) * p.px) * _soft((hw_in - np.abs(u)) * p.px)
    p.blend(sl, inner, (0.22, 0.06, 0.07))
    if float(m.teeth) > 0.05:
        p.blend(sl, inner * _soft((ui + m.teeth - v) * p.px), (0.93, 0.91, 0.84))
    if float(m.tongue) > 0.05:
        tongue = _soft((v - (li - m.tongue)) * p.px) * _soft((0.6 * hw_in - np.abs(u)) * p.px)
        p.blend(sl, inner * tongue, (0.78, 0.36, 0.38))


def rest_state() -> np.ndarray:
    """Mouth closed and relaxed (viseme ``sil``), eyes open."""
    return np.concatenate([TARGETS[0], [0.0]]).astype(np.float64)


class ClipRenderer:
    """Draws the frames of one clip of one face.

    The canvas without lips is drawn once; :meth:`frame` warps the jaw box for the frame's jaw drop,
    draws the lips into it, redraws the eyes while they blink, and cuts the crop out of the canvas."""

    def __init__(self, st: FaceStyle):
        self.st = st
        whole = _Painter(st, (0, CANVAS, 0, CANVAS))
        _draw_head(whole, st)
        _draw_eyes(whole, st, 0.0)
        _draw_nose(whole, st)
        self.unlit = whole.img  # lipless, unlit canvas
        self.canvas = (whole.lit() * 255 + 0.5).astype(np.uint8)
        top = st.mouth_y - 0.3 * st.max_open - 1.35 * st.lip_up - 4
        bottom = st.chin + _max_jaw_drop(st) + 22
        self.jaw_box = _canvas_box(st, -st.face_hw, st.face_hw, top, bottom)
        self.eye_box = _canvas_box(
            st, -st.eye_dx - st.eye_hw - 5, st.eye_dx + st.eye_hw + 5, -st.eye_hh - 5, st.eye_hh + 5
        )
        self.jaw = _Painter(st, self.jaw_box)
        weight = (st.scale * jaw_weight(st, self.jaw.u, self.jaw.v)).astype(np.float32)
        rows, cols = np.nonzero(weight.any(1))[0], np.nonzero(weight.any(0))[0]
        # the warped part of the jaw box: rows from where the weight starts, columns where it is not zero
        self._warp_sl = (slice(max(rows[0] - 1, 0), None), slice(cols[0], cols[-1] + 1))
        self._weight = weight[self._warp_sl]
        h, w = self._weight.shape
        self._warp_src = np.ascontiguousarray(self._jaw_unlit()[self._warp_sl]).reshape(-1, 3)
        self._rows = np.arange(h, dtype=np.float32)[:, None]
        self._cols = np.arange(w)[None, :]

    def _jaw_unlit(self) -> np.ndarray:
        y0, y1, x0, x1 = self.jaw_box
        return self.unlit[y0:y1, x0:x1].copy()

    def _warp_jaw(self, drop: float) -> np.ndarray:
        """The unlit jaw box with every pixel pulled down by drop * weight pixels (linear interpolation)."""
        img = self._jaw_unlit()
        if drop > 1e-3:
            h, w = self._weight.shape
            src = np.clip(self._rows - drop * self._weight, 0, h - 1)
            r0 = np.minimum(src.astype(np.int32), h - 2)
            f = (src - r0)[..., None]
            idx = r0 * w + self._cols
            top = np.take(self._warp_src, idx, axis=0)
            bottom = np.take(self._warp_src, idx + w, axis=0)
            img[self._warp_sl] = top + f * (bottom - top)
        return img

    def frame(self, state: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
        """One ``(224, 224, 3)`` uint8 frame; ``offset`` = (dx, dy) of the crop in the canvas, each in
        [0, 2 * MARGIN]."""
        st = self.st
        m = _Mouth.of(st, np.asarray(state, np.float64))
        dx, dy = int(offset[0]), int(offset[1])
        out = self.canvas[dy : dy + CROP, dx : dx + CROP].copy()
        self.jaw.img = self._warp_jaw(float(m.jaw_drop))
        _draw_mouth(self.jaw, st, m)
        patches = [(self.jaw_box, self.jaw.lit())]
        if state[BLINK] > 0.01:
            eyes = _Painter(st, self.eye_box)
            eyes.img = self.unlit[self.eye_box[0] : self.eye_box[1], self.eye_box[2] : self.eye_box[3]].copy()
            _draw_eyes(eyes, st, float(state[BLINK]))
            patches.append((self.eye_box, eyes.lit()))
        for (y0, y1, x0, x1), patch in patches:
            fy0, fy1, fx0, fx1 = max(y0, dy), min(y1, dy + CROP), max(x0, dx), min(x1, dx + CROP)
            if fy0 < fy1 and fx0 < fx1:
                out[fy0 - dy : fy1 - dy, fx0 - dx : fx1 - dx] = (
                    patch[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] * 255 + 0.5
                )
        return out


def render_clip(st: FaceStyle, states: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Frames ``(T, 224, 224, 3)`` uint8 for per-frame states ``(T, 6)`` and crop offsets ``(T, 2)``."""
    renderer = ClipRenderer(st)
    return np.stack([renderer.frame(s, o) for s, o in zip(states, offsets)])


def clip_landmarks(st: FaceStyle, states: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Landmarks ``(T, 68, 2)`` in the pixels of each frame's crop (see :meth:`ClipRenderer.frame`)."""
    return (landmarks(st, states) - np.asarray(offsets, np.float32)[:, None, :]).astype(np.float32)
