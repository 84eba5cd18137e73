"""3dshapes (Burgess & Kim 2018): 64x64 RGB images of a shaded object on the floor of a room.

Factors (as in the original file, row-major with orientation fastest):
    floor_hue    10   linspace(0, 1, 10, endpoint=False): HSV hue, full saturation and value
    wall_hue     10   same values
    object_hue   10   same values
    scale         8   linspace(0.75, 1.25, 8)
    shape         4   cube, cylinder, sphere, capsule
    orientation  15   linspace(-30, 30, 15) degrees: the camera turns around the object

Without a file the images are rendered procedurally (no download); with `path` they are read from
the original `3dshapes.h5`, or from a directory or archive holding it (see `disent.data.files`).

The procedural renderer exploits that an image is a colour lookup over fixed geometry: the three
hues only colour the floor, the walls and the object, while scale, shape and orientation fix what
each pixel shows and how brightly it is lit. So the 480 geometries (scale x shape x orientation) are
ray-cast once, into per-pixel weights `W[surface] = coverage x shading` (anti-aliased by
supersampling), and an image is `sum over surfaces of hue_rgb[surface] * W[surface]`: exact for the
scene, and a batched matrix product at sampling time.
"""

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from disent.data.base import GroundTruthData
from disent.data.files import DataFile, DataFileError, resolve_data_path
from disent.results import write_atomic

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
HUES = np.linspace(0.0, 1.0, 10, endpoint=False)
SCALES = np.linspace(0.75, 1.25, 8)
SHAPES = ("cube", "cylinder", "sphere", "capsule")
ORIENTATIONS = np.linspace(-30.0, 30.0, 15)  # degrees
FILE_NAME = "3dshapes.h5"
SHAPES3D_FILE = DataFile(
    "3dshapes file",
    (FILE_NAME,),
    f"Expected the original {FILE_NAME} (gs://3d-shapes/"
    f"{FILE_NAME}, see https://github.com/google-deepmind/3d-shapes), or a directory or archive "
    f"(.zip, .tar, .tar.gz) holding it; set dataset.path=null to render the scenes procedurally",
)
IMAGE_SIZE = 64

# --- the scene (world coordinates: y up, the object stands on the floor y = 0 around the origin)
# ---
CAMERA_DISTANCE = 3.6  # horizontal distance from the object's axis
CAMERA_HEIGHT = 2.3
CAMERA_TARGET = np.array([0.0, 0.8, 0.0])
TAN_HALF_FOV = 0.36  # tan(half the field of view): the object fills about the middle third
# A room corner behind the object: two vertical walls meeting at right angles on the vertical line
# through CORNER, each at 45 degrees to the camera's view at orientation 0, so turning
# the camera moves the corner and the floor/wall boundaries across the image.
CORNER = np.array([0.0, 0.0, -2.8])
# pointing into the room
WALL_NORMALS = np.array([[1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]) / np.sqrt(2.0)
LIGHT = np.array([2.0, 4.5, 3.0])  # a point light above, in front and to the right of the object
# shade = ambient + (1 - ambient) * max(0, n . l), l the unit vector towards LIGHT, with n . l taken
# as 0 in the object's shadow. A point light (rather than a distant one) shades the floor and walls
# with gentle gradients. The object's ambient is lower than the room's, so none of its faces shades
# exactly like the floor or a wall (a cube's top would otherwise match the floor when their hues are
# equal).
AMBIENT, OBJECT_AMBIENT = 0.35, 0.2
SUPERSAMPLE = 3  # 3x3 rays per pixel
FLOOR, WALL, OBJECT = 0, 1, 2  # surfaces, in the order of the hue factors
CHUNK = 64  # images composed at a time: large batches are done in slices that stay in the CPU cache
EPS = 1e-4  # hits nearer than this to a ray's origin are the surface it starts from
CACHE_VERSION = 1  # part of the cache file's name: bump when the renderer's code changes


# --- ray casting: every function takes origins o (..., 3) and unit directions d (..., 3) and
# returns the distance t (...,) to the first hit in front of o (inf for none) and the unit normal
# (..., 3) ---


def _sphere(
    o: np.ndarray, d: np.ndarray, centre: np.ndarray, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """A sphere, seen from outside."""
    oc = o - centre
    b = np.einsum("...i,...i->...", oc, d)
    disc = b * b - (np.einsum("...i,...i->...", oc, oc) - r * r)
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc >= 0) & (t > EPS), t, np.inf)
    return t, (oc + np.where(np.isfinite(t), t, 0.0)[..., None] * d) / r


def _vertical_tube(
    o: np.ndarray, d: np.ndarray, r: float, y0: float, y1: float
) -> tuple[np.ndarray, np.ndarray]:
    """The side of the cylinder x^2 + z^2 = r^2, y0 <= y <= y1 (from outside)."""
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    disc = b * b - a * (o[..., 0] ** 2 + o[..., 2] ** 2 - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / np.maximum(a, 1e-12)
    y = o[..., 1] + t * d[..., 1]
    t = np.where((disc >= 0) & (a > 1e-12) & (t > EPS) & (y >= y0) & (y <= y1), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * d
    return t, np.stack([p[..., 0], np.zeros_like(t), p[..., 2]], axis=-1) / r


def _top_disc(o: np.ndarray, d: np.ndarray, r: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    """The disc x^2 + z^2 <= r^2 at height y, seen from above (a cylinder's top cap).

    Bottom caps are never needed: the camera is above the floor, and shadow rays start on or
    above the floor going up, so no ray enters a solid through its base.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y - o[..., 1]) / d[..., 1]
    x, z = o[..., 0] + t * d[..., 0], o[..., 2] + t * d[..., 2]
    t = np.where((d[..., 1] < 0) & (t > EPS) & (x * x + z * z <= r * r), t, np.inf)
    return t, np.broadcast_to(np.array([0.0, 1.0, 0.0]), o.shape)


def _box(
    o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box [lo, hi] by the slab method; the normal is that of the entry slab."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0, t1 = (lo - o) * inv, (hi - o) * inv
    near, far = np.minimum(t0, t1), np.maximum(t0, t1)
    near = np.where(np.isnan(near), -np.inf, near)  # d = 0 along an axis with o on a slab plane
    far = np.where(np.isnan(far), np.inf, far)
    t_near, t_far = near.max(axis=-1), far.min(axis=-1)
    t = np.where((t_far >= t_near) & (t_near > EPS), t_near, np.inf)
    axis = near.argmax(axis=-1)
    normal = np.zeros(o.shape)
    np.put_along_axis(
        normal, axis[..., None], -np.sign(np.take_along_axis(d, axis[..., None], -1)), -1
    )
    return t, normal


def _closest(*hits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The nearest of several (t, normal) hits, per ray."""
    ts = np.stack([t for t, _ in hits])
    k = ts.argmin(axis=0)
    normals = np.stack([np.broadcast_to(n, hits[0][1].shape) for _, n in hits])
    return np.take_along_axis(ts, k[None], 0)[0], np.take_along_axis(
        normals, k[None, ..., None], 0
    )[0]


def intersect_object(
    o: np.ndarray, d: np.ndarray, shape: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Hits on object `shape` (index into SHAPES) of size `scale`, standing on the floor at the origin.

    At scale 1: a cube of side 1, a cylinder of radius 0.5 and height 1, a sphere of radius 0.5 and
    an upright capsule of radius 0.35 and height 1.2; all sizes scale linearly.
    """
    s = scale
    if SHAPES[shape] == "cube":
        return _box(o, d, np.array([-0.5 * s, 0.0, -0.5 * s]), np.array([0.5 * s, s, 0.5 * s]))
    if SHAPES[shape] == "cylinder":
        return _closest(_vertical_tube(o, d, 0.5 * s, 0.0, s), _top_disc(o, d, 0.5 * s, s))
    if SHAPES[shape] == "sphere":
        return _sphere(o, d, np.array([0.0, 0.5 * s, 0.0]), 0.5 * s)
    r, top = 0.35 * s, 1.2 * s
    return _closest(
        _vertical_tube(o, d, r, r, top - r),
        _sphere(o, d, np.array([0.0, r, 0.0]), r),
        _sphere(o, d, np.array([0.0, top - r, 0.0]), r),
    )


def intersect_room(o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits on the floor and the two walls: (t, normal, surface FLOOR or WALL).

    From inside the room every ray leaves it through one of the three planes: the nearest plane the
    ray moves towards is where it exits.
    """
    planes = np.concatenate([[[0.0, 1.0, 0.0]], WALL_NORMALS])  # (3, 3) inward normals
    points = np.stack([np.zeros(3), CORNER, CORNER])
    towards = d @ planes.T  # (..., 3): < 0 when moving towards the plane
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -np.einsum("...pi,pi->...p", o[..., None, :] - points, planes) / towards
    t = np.where(towards < 0, t, np.inf)
    k = t.argmin(axis=-1)
    return np.take_along_axis(t, k[..., None], -1)[..., 0], planes[k], np.where(k == 0, FLOOR, WALL)


def camera_rays(
    orientation_deg: float, supersample: int = SUPERSAMPLE
) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and unit directions (H * S, W * S, 3) of the camera at this orientation.

    The camera circles the object's vertical axis, looking at CAMERA_TARGET; positive angles move
    it to its right (towards +x). Rows run top to bottom, columns left to right.
    """
    a = np.deg2rad(orientation_deg)
    origin = np.array([CAMERA_DISTANCE * np.sin(a), CAMERA_HEIGHT, CAMERA_DISTANCE * np.cos(a)])
    forward = CAMERA_TARGET - origin
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    m = IMAGE_SIZE * supersample
    u = ((np.arange(m) + 0.5) / m * 2 - 1) * TAN_HALF_FOV  # (M,) ray offsets on the image plane
    d = forward + u[None, :, None] * right - u[:, None, None] * up  # (M, M, 3)
    return origin, d / np.linalg.norm(d, axis=-1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _passes_near(o: np.ndarray, d: np.ndarray, centre: np.ndarray, r: float) -> np.ndarray:
    """(...,) bool: does the ray come within `r` of `centre` ahead of its origin (inside counts)?"""
    oc = o - centre
    b = np.einsum("...i,...i->...", oc, d)
    disc = b * b - (np.einsum("...i,...i->...", oc, oc) - r * r)
    return (disc >= 0) & (-b + np.sqrt(np.maximum(disc, 0.0)) > 0)


# A sphere around the largest object of every shape: rays that miss it need no object test.
BOUND_CENTRE, BOUND_RADIUS = np.array([0.0, 0.6 * SCALES[-1], 0.0]), 0.94 * SCALES[-1]


def render_geometry(supersample: int = SUPERSAMPLE) -> np.ndarray:
    """(8, 4, 15, 3, 64, 64) float32 surface weights of every (scale, shape, orientation).

    W[..., surface, i, j] is the fraction of pixel (i, j)'s rays that see `surface` (FLOOR, WALL,
    OBJECT), each weighted by its Lambertian shade in [0, 1]. The weights of a pixel sum to at most
    1, so colouring them with hues in [0, 1] keeps the image in [0, 1].
    """
    out = np.zeros(
        (len(SCALES), len(SHAPES), len(ORIENTATIONS), 3, IMAGE_SIZE, IMAGE_SIZE), np.float32
    )
    m = IMAGE_SIZE * supersample
    pixel = (
        np.arange(m)[:, None] // supersample * IMAGE_SIZE + np.arange(m) // supersample
    ).ravel()  # (R,)
    geometry = np.arange(len(SCALES) * len(SHAPES))[:, None]  # (32, 1): (scale, shape) row-major
    for c, angle in enumerate(ORIENTATIONS):
        origin, d = camera_rays(angle, supersample)
        d = d.reshape(-1, 3)  # (R, 3), R = (64 S)^2 rays
        # (R,) (R, 3) (R,)
        t_room, n_room, surface_room = intersect_room(np.broadcast_to(origin, d.shape), d)
        p_room = origin + t_room[:, None] * d
        shadow_d = _unit(LIGHT - p_room)  # (R, 3) towards the light
        lit_room = np.maximum(np.einsum("ri,ri->r", n_room, shadow_d), 0.0)
        shadow_o = p_room + 1e-3 * n_room  # just off the room's surface
        # only rays near the object can hit it or be shadowed by it: test those alone
        seen = np.flatnonzero(_passes_near(origin, d, BOUND_CENTRE, BOUND_RADIUS))
        shaded = np.flatnonzero(
            (lit_room > 0) & _passes_near(shadow_o, shadow_d, BOUND_CENTRE, BOUND_RADIUS)
        )
        # an object beyond casts nothing
        light_distance = np.linalg.norm(LIGHT - shadow_o[shaded], axis=-1)
        shade = np.empty((len(SCALES), len(SHAPES), len(d)), np.float32)
        surface = np.empty(shade.shape, np.int64)
        for a, scale in enumerate(SCALES):
            for b in range(len(SHAPES)):
                shade[a, b] = AMBIENT + (1 - AMBIENT) * lit_room
                surface[a, b] = surface_room
                t_blocked, _ = intersect_object(shadow_o[shaded], shadow_d[shaded], b, scale)
                shade[a, b, shaded[t_blocked < light_distance]] = AMBIENT
                t_obj, n_obj = intersect_object(
                    np.broadcast_to(origin, (len(seen), 3)), d[seen], b, scale
                )
                hit = t_obj < t_room[seen]
                p_obj = origin + t_obj[hit, None] * d[seen[hit]]
                lit_obj = np.maximum(np.einsum("ri,ri->r", n_obj[hit], _unit(LIGHT - p_obj)), 0.0)
                shade[a, b, seen[hit]] = OBJECT_AMBIENT + (1 - OBJECT_AMBIENT) * lit_obj
                surface[a, b, seen[hit]] = OBJECT
        # sum each ray's shade into (geometry, the surface it sees, its pixel), then average
        bins = (
            geometry * 3 + surface.reshape(len(geometry), -1)
        ) * IMAGE_SIZE**2 + pixel  # (32, R)
        sums = np.bincount(
            bins.ravel(), weights=shade.ravel(), minlength=len(geometry) * 3 * IMAGE_SIZE**2
        )
        out[:, :, c] = sums.reshape(out[:, :, c].shape) / supersample**2
    return out


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """(...,) HSV hues in [0, 1) with full saturation and value -> (..., 3) RGB in [0, 1]."""
    h = 6 * np.asarray(hue, dtype=np.float64)
    # piecewise-linear HSV
    rgb = np.stack([np.abs(h - 3) - 1, 2 - np.abs(h - 2), 2 - np.abs(h - 4)], axis=-1)
    return np.clip(rgb, 0.0, 1.0)


def _scene_key(supersample: int) -> str:
    """A short hash of everything that shapes the rendered geometry, naming its cache file."""
    scene = (
        IMAGE_SIZE,
        SCALES,
        SHAPES,
        ORIENTATIONS,
        CAMERA_DISTANCE,
        CAMERA_HEIGHT,
        CAMERA_TARGET,
        TAN_HALF_FOV,
        CORNER,
        WALL_NORMALS,
        LIGHT,
        AMBIENT,
        OBJECT_AMBIENT,
        supersample,
        CACHE_VERSION,
    )
    text = repr([np.asarray(v).tolist() for v in scene])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def load_geometry(cache_dir: str | None = None, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """`render_geometry()`, read from / written to `cache_dir` when one is given.

    Rendering takes about 2 s on one core, so a cache is optional: it spares each new process
    that time. The file is named by a hash of the scene, so a changed scene never reads a stale
    one; it is written to a temporary file and renamed, so concurrent runs never see half a file.
    """
    if cache_dir is None:
        return render_geometry(supersample)
    path = Path(cache_dir).expanduser() / f"shapes3d_geometry_{_scene_key(supersample)}.npy"
    expected = (len(SCALES), len(SHAPES), len(ORIENTATIONS), 3, IMAGE_SIZE, IMAGE_SIZE)
    if path.is_file():
        try:
            geometry = np.load(path, allow_pickle=False)
            if geometry.shape == expected and geometry.dtype == np.float32:
                return geometry
        except (OSError, ValueError, EOFError):
            pass  # unreadable: render it again and replace it
        print(f"shapes3d: ignoring the unreadable or stale cache file {path}", file=sys.stderr)
    print(
        f"shapes3d: rendering the scene geometry for the cache file {path} (once, ~2 s)",
        file=sys.stderr,
    )
    start = time.perf_counter()
    geometry = render_geometry(supersample)
    print(f"shapes3d: rendered in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    try:
        write_atomic(path, lambda file: np.save(file, geometry))
    except (
        OSError
    ) as error:  # e.g. a read-only directory: the geometry is still good, only not kept
        print(f"shapes3d: could not write the cache file {path}: {error}", file=sys.stderr)
    return geometry


def _h5_dataset(h5py, f, path: Path, name: str):
    """The HDF5 dataset `name` (present in the open file `f`), or a DataFileError saying what stands there instead."""
    found = f.get(name, getlink=True)
    target = f.get(name)  # None for a link that points nowhere
    if target is None:
        raise SHAPES3D_FILE.error(
            path, f"its {name!r} is a link ({type(found).__name__}) to nothing"
        )
    if not isinstance(target, h5py.Dataset):
        raise SHAPES3D_FILE.error(
            path, f"its {name!r} is an HDF5 {type(target).__name__}, not a dataset of arrays"
        )
    return target


def _import_h5py():
    """h5py, needed only to read the original file (so it is imported only then)."""
    try:
        import h5py
    except ImportError as error:
        raise ImportError(
            f"reading {FILE_NAME} needs h5py (pip install h5py); without `dataset.path` the "
            f"scenes are rendered procedurally and need no h5py"
        ) from error
    return h5py


class Shapes3D(GroundTruthData):
    """3dshapes, rendered procedurally or read from the original `3dshapes.h5`.

    The procedural scenes keep the original's factor grid and what each factor does, but are not
    the original images (those were rendered with MuJoCo):
      * scene: a floor and a room corner (two walls at right angles, both coloured by wall_hue)
        behind an object standing on the floor; the camera circles the object's vertical axis over
        the 15 orientations, so the corner, the floor/wall boundaries and the object's visible
        faces move with it. The original's camera, distances and wall layout differ.
      * shapes: a cube (side 1), an upright cylinder (radius 0.5, height 1), a sphere (radius 0.5)
        and an upright capsule (radius 0.35, height 1.2), times the scale factor; the original's
        exact proportions are not published.
      * light: one point light plus ambient (Lambertian, with the object's cast shadow), so the two
        walls and the object's faces differ in brightness and the floor has a gentle gradient; the
        object's ambient is lower than the room's, so it stands out even when its hue is theirs.
        The original's lighting differs.
      * colour: each hue is HSV (hue, 1, 1) multiplied by the shade; the original's colours are
        also full-saturation hues, but its shading and exact values differ.
      * pixels: 3x3 rays per pixel (anti-aliased edges).
    Rendering is exact for the scene and fast: see the module docstring. `cache_dir` (optional)
    keeps the rendered geometry (24 MB) on disk, to skip the ~2 s render in later processes.

    With `path`, observations are the file's images. `in_memory=True` loads all of them at once
    (5.9 GB of RAM); the default reads each batch from the file (little memory, but slower per
    image: prefer `in_memory` for metrics, which draw many thousands of images, when RAM allows).
    `factor_sizes` is the grid the file must hold; leave it at the real sizes: only tests pass a
    smaller grid (a file written in the same layout), to exercise the loader without the download.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    observation_shape = (3, IMAGE_SIZE, IMAGE_SIZE)
    deterministic = True

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        factor_sizes: tuple[int, ...] = FACTOR_SIZES,
        in_memory: bool = False,
    ):
        self.path = None if path is None else os.fspath(path)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        if len(self.factor_sizes) != len(FACTOR_NAMES):
            raise ValueError(
                f"3dshapes has {len(FACTOR_NAMES)} factors {FACTOR_NAMES}, got sizes {self.factor_sizes}"
            )
        self.in_memory = bool(in_memory)
        self._geometry = self._images = self._file = self._path = None
        if self.path is None:
            if self.factor_sizes != FACTOR_SIZES:
                raise ValueError(
                    f"the procedural renderer draws the full grid {FACTOR_SIZES}; "
                    f"a smaller grid needs a file (`path`)"
                )
            # (480, 3, 4096): geometry (scale, shape, orientation) row-major, then surface, then
            # pixel
            self._geometry = load_geometry(cache_dir).reshape(
                len(SCALES) * len(SHAPES) * len(ORIENTATIONS), 3, -1
            )
            self._hue_rgb = hue_to_rgb(HUES).astype(np.float32)  # (10, 3)
        else:
            self._images = self._load(self.path)

    # --- the original file -------------------------------------------------------------------

    def _load(self, path: str) -> np.ndarray | None:
        """Check the file holds this grid in this order; its images if `in_memory`, else None."""
        self._path = file = resolve_data_path(path, SHAPES3D_FILE)
        h5py = _import_h5py()
        if not h5py.is_hdf5(file):
            raise SHAPES3D_FILE.error(file, "it is not an HDF5 file")
        n = len(self)
        try:
            with h5py.File(file, "r") as f:
                missing = [
                    name for name in ("images", "labels") if f.get(name, getlink=True) is None
                ]
                if missing:
                    raise SHAPES3D_FILE.error(
                        file, f"datasets {missing} are missing (found {sorted(f.keys())})"
                    )
                images, labels = (_h5_dataset(h5py, f, file, name) for name in ("images", "labels"))
                if images.shape != (n, IMAGE_SIZE, IMAGE_SIZE, 3) or images.dtype != np.uint8:
                    raise SHAPES3D_FILE.error(
                        file,
                        f"images are {images.dtype} {images.shape}, not uint8 "
                        f"{(n, IMAGE_SIZE, IMAGE_SIZE, 3)} (the grid {self.factor_sizes})",
                    )
                if labels.shape != (n, len(FACTOR_NAMES)):
                    raise SHAPES3D_FILE.error(
                        file, f"labels have shape {labels.shape}, not {(n, len(FACTOR_NAMES))}"
                    )
                self._check_order(file, labels[()])
                return images[()] if self.in_memory else None
        except (
            OSError,
            KeyError,
            ValueError,
            TypeError,
        ) as error:  # a damaged HDF5 file fails on open or read
            if isinstance(error, DataFileError):
                raise
            raise SHAPES3D_FILE.error(
                file, f"it is damaged or truncated ({type(error).__name__}: {error})"
            ) from error

    def _check_order(self, path: Path, labels: np.ndarray) -> None:
        """The labels must enumerate the grid row-major, orientation fastest, each factor's values
        increasing (the original stores the factor values, e.g. hues and degrees, not indices)."""
        grid = self.index_to_factors(np.arange(len(labels)))
        for k, name in enumerate(FACTOR_NAMES):
            values = np.unique(labels[:, k])
            if len(values) != self.factor_sizes[k] or not np.array_equal(
                np.searchsorted(values, labels[:, k]), grid[:, k]
            ):
                raise SHAPES3D_FILE.error(
                    path,
                    f"labels[:, {k}] ({name}) do not enumerate {self.factor_sizes[k]} "
                    f"values in the grid's order {self.factor_sizes} (row-major, orientation "
                    f"fastest)",
                )

    def _read(self, indices: np.ndarray) -> np.ndarray:
        """(N,) grid indices -> (N, 64, 64, 3) uint8 images from memory or the file."""
        if self._images is not None:
            return self._images[indices]
        # h5py reads sorted, distinct indices
        unique, inverse = np.unique(indices, return_inverse=True)
        try:
            # h5py handles do not survive a fork
            if self._file is None or self._file[0] != os.getpid():
                self._file = (os.getpid(), _import_h5py().File(self._path, "r"))
            return self._file[1]["images"][unique][inverse]
        except (
            OSError
        ) as error:  # damaged since it was checked, or a damaged chunk the check did not read
            raise SHAPES3D_FILE.error(self._path, f"reading images failed ({error})") from error

    def __getstate__(self) -> dict:
        """Pickle without the open file (data loader workers reopen it)."""
        return {**self.__dict__, "_file": None}

    # --- observations ------------------------------------------------------------------------

    def sample_observations_from_factors(
        self, factors: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """(N, 6) factors -> (N, 3, 64, 64) float32 in [0, 1]; deterministic, `rng` unused."""
        factors = self.check_factors(factors)
        if self._geometry is None:
            images = self._read(self.factors_to_index(factors))  # (N, 64, 64, 3) uint8
            return images.transpose(0, 3, 1, 2).astype(np.float32) / 255
        colours = self._hue_rgb[factors[:, :3]].transpose(0, 2, 1)  # (N, rgb, surface)
        geometry = np.ravel_multi_index(tuple(factors[:, 3:].T), FACTOR_SIZES[3:])  # (N,)
        images = np.empty((len(factors), 3, IMAGE_SIZE * IMAGE_SIZE), np.float32)
        for start in range(0, len(factors), CHUNK):  # chunks keep the gathered weights in cache
            part = slice(start, start + CHUNK)
            # (n, rgb, surface) @ (n, surface, 64 * 64): each pixel mixes the three surfaces'
            # colours
            np.matmul(colours[part], self._geometry[geometry[part]], out=images[part])
        return np.minimum(images, 1.0, out=images).reshape(len(factors), 3, IMAGE_SIZE, IMAGE_SIZE)
