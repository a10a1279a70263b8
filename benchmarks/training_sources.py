"""Where the training photos come from: every candidate file, with its license record.

Only the packages `/work/shared/ASSETS.md` names, and only their real color photographs: each
list below was made by looking at every image of the package, and each file or folder left out
says why. What no evaluation uses is taken; what an evaluation uses (the bundled photos and their
sources, the gcompris bundles of `benchmarks.datasets`) never is. `benchmarks.training_set`
then checks every candidate by content as well.

A reader yields `Candidate`s lazily and raises `MissingSourceError` naming the package to install.
"""

from __future__ import annotations

import fnmatch
import inspect
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks import datasets
from benchmarks.datasets import MissingSourceError
from tools.asset_sources import MATE_NATURE_DIR, OPENCV_DATA_DIR

DOC = Path("/usr/share/doc")
BACKGROUNDS = Path("/usr/share/backgrounds")
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
VTEST = OPENCV_DATA_DIR / "vtest.avi"


@dataclass(frozen=True)
class Candidate:
    """One photo the training set may take.

    `original` names the file in its package (a path, `BUNDLE.rcc:PATH` or `VIDEO#FRAME`);
    `group` is the split unit: files showing the same scene share it, so they fall on one side.
    """

    source: str
    name: str
    package: str
    original: str
    record: str
    group: str
    load: Callable[[], Image.Image]


Reader = Callable[[], Iterator[Candidate]]


def _file(path: Path) -> Callable[[], Image.Image]:
    return lambda: Image.open(path)


def _bytes(data: bytes) -> Callable[[], Image.Image]:
    return lambda: Image.open(io.BytesIO(data))


def _paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def _copyright(package: str) -> Path:
    path = DOC / package / "copyright"
    if not path.is_file():
        raise MissingSourceError(f"{path} not found: install the Debian package {package}")
    return path


def debian_record(package: str, upstream_path: str) -> str | None:
    """The paragraph of `/usr/share/doc/PACKAGE/copyright` (machine-readable, DEP-5) that covers
    `upstream_path`: the last one whose `Files:` patterns match, as DEP-5 says; None if none.

    Raises:
        MissingSourceError: the package is not installed.
    """
    found = None
    for paragraph in _paragraphs(_copyright(package).read_text(encoding="utf-8")):
        match = re.match(r"Files:((?:.*\n?)(?:[ \t].*\n?)*)", paragraph)
        if match and any(fnmatch.fnmatch(upstream_path, p) for p in match.group(1).split()):
            found = paragraph
    return found


def debian_text(package: str, upstream_path: str) -> str:
    """`debian_record`, or a line saying that no paragraph covers the file."""
    record = debian_record(package, upstream_path)
    return record or f"(no paragraph of {package}'s copyright covers {upstream_path})"


def readme_record(readme: str, file_name: str) -> str:
    """The paragraph of a gcompris README that lists `file_name`, else the whole README."""
    for paragraph in _paragraphs(readme):
        if any(line.strip() == file_name for line in paragraph.splitlines()):
            return paragraph
    return readme.strip()


# ---------------------------------------------------------------------------- PyPI

# scikit-image's other color images are bundled (astronaut, chelsea, coffee, rocket, motorcycle),
# synthetic (color, chessboard_RGB, logo) or not photos; matplotlib's only other image is an icon
# (Minduka_Present_Blue_Pack.png) and scikit-learn ships no other image.
SKIMAGE_PHOTOS = {
    "hubble_deep_field.jpg": "hubble_deep_field",
    "ihc.png": "immunohistochemistry",
    "retina.jpg": "retina",
}


def scikit_image() -> Iterator[Candidate]:
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    for file, loader in SKIMAGE_PHOTOS.items():
        doc = inspect.cleandoc(getattr(skimage.data, loader).__doc__ or "").split("Returns\n")[0]
        yield Candidate(
            "scikit-image",
            Path(file).stem,
            "scikit-image (PyPI)",
            f"skimage/data/{file}",
            f"skimage.data.{loader}() docstring:\n{doc.strip()}",
            f"scikit-image:{file}",
            _file(folder / file),
        )


# ---------------------------------------------------------------------------- Debian: wallpapers

# not photographs: vector art, digital paintings, gradients, colored light on a texture
LOMIRI_NOT_PHOTOS = {
    "Fossa_by_Jasper_Roks.jpg": "abstract vector art",
    "Infinite-Sea_by_Aury88.jpg": "digital artwork (composited sky and sea)",
    "Painting-Colors_by__herobrine7gamer.jpg": "graphic stripes",
    "umang_by_Abhishek_Mudgal.jpg": "color gradient",
    "analogpattern_by_Peter_Nerlich.jpg": "arbitrary colored light on a texture",
}


def _lomiri(version: str) -> Reader:
    package = f"lomiri-wallpapers-{version}"

    def read() -> Iterator[Candidate]:
        _copyright(package)  # the package is installed
        for path in sorted(BACKGROUNDS.glob("*_by_*.jpg")):
            record = debian_record(package, f"{version}/{path.name}")  # None: the other release
            if record is not None and path.name not in LOMIRI_NOT_PHOTOS:
                yield Candidate(
                    "lomiri-wallpapers",
                    path.stem,
                    f"{package} (Debian)",
                    str(path),
                    record,
                    str(path),
                    _file(path),
                )

    return read


# the other nature photos are bundled (tools/make_assets.py); mate's abstract and desktop
# folders hold drawings, renders and an abstract painting (Elephants)
MATE_PHOTOS = ("Aqua.jpg", "Blinds.jpg", "RainDrops.jpg", "TwoWings.jpg", "Wood.jpg")


def mate() -> Iterator[Candidate]:
    for name in MATE_PHOTOS:
        path = MATE_NATURE_DIR / name
        yield Candidate(
            "mate-backgrounds",
            path.stem,
            "mate-backgrounds (Debian)",
            str(path),
            debian_text("mate-backgrounds", f"nature/{name}"),
            str(path),
            _file(path),
        )


# ---------------------------------------------------------------------------- Debian: opencv-doc

# opencv-doc's photos that are neither bundled (tools/make_assets.py: fruits, baboon, aloe, ...)
# nor evaluated (Megamind.avi). Left out: renders (Blender_Suzanne*; smarties: flawless spheres
# on white), drawings and logos (HappyFish, LinuxLogo, WindowsLogo, ml, pic*), gray photos (box*,
# blox, left01..14, right01..14, sudoku, ...), synthetic or degraded copies (ela_modified: a
# tampered copy of ela_original; licenseplate_motion, text_defocus, text_motion: blurred on
# purpose; imageText*, notes: text) and tree.avi (an over-exposed 320x240 clip). left.jpg and
# right.jpg are one stereo scene: one split group.
OPENCV_PHOTOS = {
    "board.jpg": "board.jpg",
    "chicky_512.png": "chicky_512.png",
    "ela_original.jpg": "ela_original.jpg",
    "left.jpg": "left+right.jpg",
    "right.jpg": "left+right.jpg",
    "stuff.jpg": "stuff.jpg",
}
VTEST_FRAME = 400  # one frame of the street scene: a fixed camera, the other frames repeat it


def opencv() -> Iterator[Candidate]:
    for name, group in OPENCV_PHOTOS.items():
        path = OPENCV_DATA_DIR / name
        yield Candidate(
            "opencv-doc",
            path.stem,
            "opencv-doc (Debian)",
            str(path),
            debian_text("opencv-doc", f"samples/data/{name}"),
            f"opencv-doc:{group}",
            _file(path),
        )


def opencv_video() -> Iterator[Candidate]:
    record = debian_text("opencv-doc", "samples/data/vtest.avi")
    try:
        import av
    except ImportError as error:
        raise MissingSourceError("PyAV is needed to read video: pip install -e '.[dev]'") from error

    def frame() -> Image.Image:
        with av.open(str(VTEST)) as container:
            for n, decoded in enumerate(container.decode(video=0)):
                if n == VTEST_FRAME:
                    return decoded.to_image()
        raise MissingSourceError(f"{VTEST} has no frame {VTEST_FRAME}")

    yield Candidate(
        "opencv-doc",
        f"vtest_{VTEST_FRAME:04d}",
        "opencv-doc (Debian)",
        f"{VTEST}#{VTEST_FRAME}",
        record,
        "opencv-doc:vtest.avi",
        frame,
    )


# ---------------------------------------------------------------------------- Debian: gcompris

# Every bundle of /usr/share/gcompris-qt/rcc was listed; these are the photos of the bundles
# that no evaluation set reads (bundle -> folder -> files; "*" = every .webp of the folder).
# Left out: babyshapes (pieces of one dog photo cut into shapes, and painting crops), chronos
# (drawings), clickgame's fish sprites (small drawings), core, gravity and solar_system (planet
# globes: composites and false color), details' paintings (Van Gogh backgrounds) and its
# pieces (<= 74 px crops of the backgrounds), louis-braille's portrait painting, chart and
# drawing, digital_electricity's and core's paper textures. Every other bundle holds only
# drawings, or images under 128 px.
GCOMPRIS_PHOTOS: dict[str, dict[str, tuple[str, ...]]] = {
    "clickgame": {"resource": tuple(f"sea{n}.webp" for n in range(1, 7))},
    "explore_world_music": {"resource/music": ("*",)},
    "leftright": {"resource": ("*",)},
    "louis-braille": {
        "resource": (
            "braille.webp",
            "braille_ball.webp",
            "fireplace.webp",
            "rnib.webp",
            "statue.webp",
            "teach.webp",
            "workshop.webp",
        )
    },
    "details": {
        "resource/image": tuple(
            f"{name}_background.webp"
            for name in (
                "Chenonceau",
                "EgeskovSlotSpejling",
                "EilanDonanCastle",
                "FanoeWindmill",
                "GizahPyramids",
                "Louvre_2007_02_24_c",
                "NDP",
                "Nagoya",
                "Neuschwanstein",
                "OperaSidney",
                "TajMahal",
                "TourEiffel",
                "TowerBridgeLondon",
            )
        )
    },
}
# photos of one subject in one series: one split group
GCOMPRIS_GROUPS = {"leftright": "hands"}


def gcompris() -> Iterator[Candidate]:
    evaluated = {bundle for bundle, _ in datasets.EVALUATION_SOURCES}
    for bundle, folders in GCOMPRIS_PHOTOS.items():
        if bundle in evaluated:
            raise ValueError(f"gcompris bundle {bundle} is read by an evaluation set")
        for folder, wanted in folders.items():
            files = dict(datasets.bundle_files(bundle, folder))
            readme = next((d.decode() for p, d in files.items() if p.endswith("/README")), "")
            for path, data in sorted(files.items()):
                name = Path(path).name
                if not name.endswith(".webp") or not any(fnmatch.fnmatch(name, w) for w in wanted):
                    continue
                inner = path.split("/activities/")[-1]
                yield Candidate(
                    "gcompris-qt-data",
                    f"{bundle}_{Path(name).stem}",
                    "gcompris-qt-data (Debian)",
                    f"{bundle}.rcc:{inner}",
                    f"{bundle}/{folder}/README:\n{readme_record(readme, name)}",
                    f"gcompris:{bundle}:{GCOMPRIS_GROUPS.get(bundle, name)}",
                    _bytes(data),
                )


# ---------------------------------------------------------------------------- Debian: tuxpaint

# Folders of drawings (clothes, dreidels), symbols, flags, road signs and space renders; then the
# drawn stamps that sit among photos in the other folders (found by looking at each one).
# Mirrored copies (*_mirror.png) repeat a stamp.
TUXPAINT_SKIP_FOLDERS = (
    "clothes",
    "seasonal/hanukkah",
    "space",
    "symbols",
    "town/flags",
    "town/roadsigns",
)
TUXPAINT_DRAWINGS = frozenset(
    {
        "animals/insects/bee.png",
        "animals/insects/fly.png",
        "animals/mammals/hedgehog.png",
        "food/pizza.png",
        "medical/tooth.png",
        "naturalforces/lightningbolt.png",
        "people/body_parts/eye.png",
        "seasonal/christmas/Santa.png",
        "seasonal/christmas/candy_cane.png",
        "seasonal/christmas/tree.png",
        "seasonal/easter/bunny-egg.png",
        "seasonal/easter/bunny.png",
        "seasonal/easter/chick-hatched.png",
        "seasonal/easter/chick.png",
        "seasonal/halloween/jackolantern_mean.png",
        "town/monuments/inukshuk-outline.png",
        "vehicles/7spoke256.png",
    }
)


def _tuxpaint_photo(relative: str) -> bool:
    return not (
        "cartoon" in relative.split("/")
        or any(relative.startswith(f"{folder}/") for folder in TUXPAINT_SKIP_FOLDERS)
        or relative in TUXPAINT_DRAWINGS
        or relative.endswith("_mirror.png")
    )


def tuxpaint() -> Iterator[Candidate]:
    record = debian_text("tuxpaint-stamps-default", "stamps/")
    for path in sorted(TUXPAINT_STAMPS.rglob("*.png")):
        relative = path.relative_to(TUXPAINT_STAMPS).as_posix()
        if _tuxpaint_photo(relative):
            yield Candidate(
                "tuxpaint-stamps",
                relative.removesuffix(".png").replace("/", "_"),
                "tuxpaint-stamps-default (Debian)",
                str(path),
                record,
                f"tuxpaint:{relative}",
                _file(path),
            )


READERS: dict[str, Reader] = {
    "scikit-image": scikit_image,
    "lomiri-wallpapers-16.04": _lomiri("16.04"),
    "lomiri-wallpapers-20.04": _lomiri("20.04"),
    "mate-backgrounds": mate,
    "opencv-doc": opencv,
    "opencv-doc video": opencv_video,
    "gcompris-qt-data": gcompris,
    "tuxpaint-stamps-default": tuxpaint,
}
