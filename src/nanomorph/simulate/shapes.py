"""Particle solids and their projected thickness along the beam.

Every solid is described in pixel units around its own centre; ``chord_px(x, y)`` returns, for
beam positions ``(x, y)`` (arrays, pixels, x to the right and y down), the length of the straight
line along the beam (z) that lies inside the solid. That chord is the projected thickness that
mass-thickness and Z-contrast scale with, and ``chord > 0`` is the projected particle itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHAPES = (
    "sphere",
    "ellipsoid",
    "cube",
    "octahedron",
    "cuboctahedron",
    "truncated_octahedron",
    "tetrahedron",
    "icosahedron",
    "decahedron",
    "plate",
    "rod",
    "blob",
)

_SQ3 = np.sqrt(3.0)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3) (a random unit quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def near_zone_axis_rotation(rng: np.random.Generator, max_tilt_deg: float) -> np.ndarray:
    """An in-plane rotation with a small random tilt: a crystal lying on a low-index facet."""
    a = rng.uniform(0, 2 * np.pi)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    t = np.deg2rad(rng.uniform(0, max_tilt_deg))
    b = rng.uniform(0, 2 * np.pi)
    axis = np.array([np.cos(b), np.sin(b), 0.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rt = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)
    return rt @ rz


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _cube_normals() -> np.ndarray:
    return np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)


def _octa_normals() -> np.ndarray:
    s = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
    return _unit(s)


def _icosa_normals() -> np.ndarray:
    # Face normals of an icosahedron are the vertices of a dodecahedron.
    p = (1 + np.sqrt(5)) / 2
    v = [[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)]
    for a in (-1, 1):
        for b in (-1, 1):
            v += [[0, a / p, b * p], [a / p, b * p, 0], [a * p, 0, b / p]]
    return _unit(np.array(v, float))


def _decahedron_normals(tilt_deg: float = 37.4) -> np.ndarray:
    # A Marks-free pentagonal bipyramid: ten {111}-like faces around the five-fold axis (z).
    t = np.deg2rad(tilt_deg)
    n = []
    for k in range(5):
        az = 2 * np.pi * (k + 0.5) / 5
        for s in (-1, 1):
            n.append([np.cos(az) * np.cos(t), np.sin(az) * np.cos(t), s * np.sin(t)])
    return _unit(np.array(n))


@dataclass
class Solid:
    """One particle solid in pixel units, centred at the origin.

    Attributes
    ----------
    kind : str
        One of `SHAPES`.
    radius_px : float
        Radius of a sphere that contains the solid (for the crop size).
    normals, offsets : numpy.ndarray or None
        Convex polyhedron as half-spaces ``normals @ p <= offsets`` (already rotated).
    quad : numpy.ndarray or None
        Ellipsoid as ``p^T quad p <= 1`` (already rotated).
    axis, half_length_px, rod_radius_px : rod (spherocylinder) geometry.
    blob_r0_px, blob_rz_px, blob_harmonics : irregular blob outline ``R(phi)`` and half-height.
    """

    kind: str
    radius_px: float
    normals: np.ndarray | None = None
    offsets: np.ndarray | None = None
    quad: np.ndarray | None = None
    axis: np.ndarray | None = None
    half_length_px: float = 0.0
    rod_radius_px: float = 0.0
    blob_r0_px: float = 0.0
    blob_rz_px: float = 0.0
    blob_harmonics: np.ndarray | None = None

    def chord_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Length (px) of the beam path inside the solid at beam positions ``(x, y)`` (px)."""
        if self.kind == "sphere":
            return 2.0 * np.sqrt(np.maximum(self.radius_px**2 - x * x - y * y, 0.0))
        if self.quad is not None:
            return _ellipsoid_chord(self.quad, x, y)
        if self.normals is not None:
            return _polyhedron_chord(self.normals, self.offsets, x, y)
        if self.axis is not None:
            return _capsule_chord(self.axis, self.half_length_px, self.rod_radius_px, x, y)
        return _blob_chord(self.blob_r0_px, self.blob_rz_px, self.blob_harmonics, x, y)


def _ellipsoid_chord(a: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # p = (x, y, z): a33 z^2 + 2 (a13 x + a23 y) z + (a11 x^2 + 2 a12 x y + a22 y^2 - 1) <= 0
    b = a[0, 2] * x + a[1, 2] * y
    c = a[0, 0] * x * x + 2 * a[0, 1] * x * y + a[1, 1] * y * y - 1.0
    disc = b * b - a[2, 2] * c
    return 2.0 * np.sqrt(np.maximum(disc, 0.0)) / a[2, 2]


def _polyhedron_chord(n: np.ndarray, d: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Along the beam each face n.p <= d bounds z from above (n_z > 0) or below (n_z < 0):
    # z <= (d - n_x x - n_y y) / n_z. The chord is (lowest upper bound - highest lower bound).
    # Faces run along axis 0 so the reductions are vectorised over the (many) beam positions.
    shape = x.shape
    xf = x.reshape(1, -1)
    yf = y.reshape(1, -1)
    nz = n[:, 2]
    up = nz > 1e-9
    lo = nz < -1e-9
    flat = ~(up | lo)
    bounds = []
    for sel, reduce, empty in ((up, np.min, np.inf), (lo, np.max, -np.inf)):
        if sel.any():
            a = (d[sel] / nz[sel])[:, None]
            b = (-n[sel, 0] / nz[sel])[:, None]
            c = (-n[sel, 1] / nz[sel])[:, None]
            bounds.append(reduce(a + b * xf + c * yf, axis=0))
        else:
            bounds.append(np.full(xf.shape[1], empty))
    chord = np.maximum(bounds[0] - bounds[1], 0.0)
    if flat.any():
        rhs = d[flat][:, None] - n[flat, 0][:, None] * xf - n[flat, 1][:, None] * yf
        chord = np.where(np.all(rhs >= 0, axis=0), chord, 0.0)
    return chord.reshape(shape)


def _capsule_chord(u: np.ndarray, h: float, r: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # A spherocylinder is convex, so the beam meets it in one interval: the union of the
    # intervals through its cylinder (clipped to the slab |p.u| <= h) and its two end spheres.
    lo = np.full(x.shape, np.inf)
    hi = np.full(x.shape, -np.inf)
    for s in (-1.0, 1.0):
        cx, cy, cz = s * h * u
        rho2 = (x - cx) ** 2 + (y - cy) ** 2
        half = np.sqrt(np.maximum(r * r - rho2, 0.0))
        ok = rho2 < r * r
        lo = np.where(ok, np.minimum(lo, cz - half), lo)
        hi = np.where(ok, np.maximum(hi, cz + half), hi)
    uz = u[2]
    w = x * u[0] + y * u[1]
    a = max(1.0 - uz * uz, 1e-12)
    b = -w * uz
    c = x * x + y * y - w * w - r * r
    disc = b * b - a * c
    ok = disc > 0
    sq = np.sqrt(np.maximum(disc, 0.0))
    z0 = (-b - sq) / a
    z1 = (-b + sq) / a
    if abs(uz) > 1e-9:
        s0 = (-h - w) / uz
        s1 = (h - w) / uz
        z0 = np.maximum(z0, np.minimum(s0, s1))
        z1 = np.minimum(z1, np.maximum(s0, s1))
    else:
        ok &= np.abs(w) <= h
    ok &= z1 > z0
    lo = np.where(ok, np.minimum(lo, z0), lo)
    hi = np.where(ok, np.maximum(hi, z1), hi)
    return np.where(hi > lo, hi - lo, 0.0)


def _blob_chord(
    r0: float, rz: float, harmonics: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    phi = np.arctan2(y, x)
    radius = np.full(x.shape, r0)
    for k, amp, phase in harmonics:
        radius = radius + r0 * amp * np.cos(k * phi + phase)
    q = 1.0 - (x * x + y * y) / np.maximum(radius, 1e-6) ** 2
    return 2.0 * rz * np.sqrt(np.maximum(q, 0.0))


def make_solid(kind: str, diameter_px: float, rng: np.random.Generator) -> Solid:
    """Draw a random solid of the given kind whose projection is about ``diameter_px`` across.

    Parameters
    ----------
    kind : str
        One of `SHAPES`.
    diameter_px : float
        Nominal size in pixels (the diameter of a sphere of about the same projected area).
    rng : numpy.random.Generator
        Source of the random orientation, aspect ratio and facet truncation.

    Returns
    -------
    Solid
        The solid, rotated, in pixel units.

    Raises
    ------
    ValueError
        If ``kind`` is not one of `SHAPES` or ``diameter_px`` is not positive.
    """
    if kind not in SHAPES:
        raise ValueError(f"unknown particle shape {kind!r}; expected one of {SHAPES}")
    if not diameter_px > 0:
        raise ValueError(f"particle diameter must be positive, got {diameter_px!r} px")
    r = diameter_px / 2.0
    if kind == "sphere":
        return Solid("sphere", r)
    if kind == "ellipsoid":
        aspect = rng.uniform(1.15, 2.2)
        axes = np.array([r * aspect**0.5, r / aspect**0.5, r * rng.uniform(0.6, 1.1)])
        rot = random_rotation(rng)
        quad = rot @ np.diag(1.0 / axes**2) @ rot.T
        return Solid("ellipsoid", float(axes.max()), quad=quad)
    if kind == "rod":
        aspect = rng.uniform(2.0, 6.0)
        rr = r / np.sqrt(aspect * 0.8)  # keep the projected area near that of the nominal disc
        h = rr * (aspect - 1.0)
        rot = near_zone_axis_rotation(rng, 25.0) if rng.random() < 0.8 else random_rotation(rng)
        u = rot @ np.array([1.0, 0.0, 0.0])
        return Solid("rod", h + rr, axis=u, half_length_px=h, rod_radius_px=rr)
    if kind == "blob":
        n = rng.integers(2, 6)
        ks = rng.choice(np.arange(2, 8), size=n, replace=False)
        amps = rng.uniform(0.02, 0.18, size=n) / np.sqrt(ks / 2.0)
        harm = np.stack([ks, amps, rng.uniform(0, 2 * np.pi, size=n)], axis=1)
        return Solid(
            "blob",
            r * (1 + amps.sum()) + 1.0,
            blob_r0_px=r,
            blob_rz_px=r * rng.uniform(0.5, 1.0),
            blob_harmonics=harm,
        )
    # Convex polyhedra: normals (unit) with the inradius-like offset per face.
    if kind == "cube":
        n = _cube_normals()
        d = np.ones(6)
        scale = r * np.sqrt(np.pi) / 2.0  # a face-on square of side 2*scale has the disc's area
        bound = scale * _SQ3
        rot = near_zone_axis_rotation(rng, 20.0) if rng.random() < 0.6 else random_rotation(rng)
    elif kind == "octahedron":
        n = _octa_normals()
        d = np.ones(8)
        scale = r * 0.75
        bound = scale * _SQ3
        rot = random_rotation(rng)
    elif kind in ("cuboctahedron", "truncated_octahedron"):
        n = np.concatenate([_cube_normals(), _octa_normals()])
        # truncation: octahedral faces closer (cuboctahedron-like) or cube faces closer
        if kind == "cuboctahedron":
            d = np.concatenate([np.ones(6), np.full(8, rng.uniform(0.58, 0.75) * _SQ3)])
        else:
            d = np.concatenate([np.full(6, rng.uniform(1.05, 1.3)), np.ones(8)])
        scale = r * 0.88
        bound = scale * float(d.max()) * _SQ3
        rot = random_rotation(rng)
    elif kind == "tetrahedron":
        n = _unit(np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float))
        d = np.ones(4)
        scale = r * 0.55
        bound = scale * 3.0
        rot = random_rotation(rng)
    elif kind == "icosahedron":
        n = _icosa_normals()
        d = np.ones(20)
        scale = r * 0.95
        bound = scale * 1.26
        rot = random_rotation(rng)
    elif kind == "decahedron":
        n = _decahedron_normals()
        d = np.ones(10)
        scale = r * 0.8
        bound = scale / np.sin(np.deg2rad(37.4))
        rot = near_zone_axis_rotation(rng, 30.0) if rng.random() < 0.5 else random_rotation(rng)
    else:  # plate: triangular or hexagonal prism lying flat
        sides = 3 if rng.random() < 0.5 else 6
        az = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(sides) / sides
        side = np.stack([np.cos(az), np.sin(az), np.zeros(sides)], axis=1)
        thick = rng.uniform(0.25, 0.5)
        n = np.concatenate([side, [[0, 0, 1.0], [0, 0, -1.0]]])
        d = np.concatenate([np.ones(sides), [thick, thick]])
        if sides == 3:  # triangle (optionally with truncated corners)
            trunc = rng.uniform(1.4, 2.0)
            n = np.concatenate([n, -side])
            d = np.concatenate([d, np.full(sides, trunc)])
            scale = r * 0.75
            bound = scale * 2.0 * 1.05
        else:
            scale = r * 0.95
            bound = scale * 1.2
        rot = near_zone_axis_rotation(rng, 15.0)
    normals = n @ rot.T
    return Solid(kind, float(bound) + 0.5, normals=normals, offsets=d * scale)
