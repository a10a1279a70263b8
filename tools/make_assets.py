"""Rebuild the bundled color photos in ``platform/assets/`` from installed packages.

Two sets. The core photos (``photos/``: tests, benchmarks, the demo) come from packages that
are installed the ordinary way (PyPI: scikit-image, scikit-learn, matplotlib; Debian:
``opencv-doc``, ``mate-backgrounds``). The reference corpus (``photos/corpus/``: with the core
photos, what ``--auto`` retrieves from on a fresh machine) adds small copies of photos of
people, places, water, sky, plants, animals, food and objects from Debian packages that no
training or evaluation set reads (``kphotoalbum``'s demo album, ``tuxpaint-data``'s
templates, ``plasma-workspace-wallpapers``, ``gnome-control-center-data``'s user pictures,
``kalzium-data``'s lab-tool photos, ``scribus-template``, ``opencv-doc``'s module examples).
A package that is not installed is fetched with ``apt-get download`` and unpacked (not
installed) under ``--debs``. For each source the script:

1. opens it, applies any EXIF orientation and converts embedded non-sRGB ICC profiles to sRGB;
2. downscales it with Lanczos so that the long side is at most ``MAX_SIDE`` pixels;
3. saves it as a baseline JPEG (quality ``JPEG_QUALITY``, RGB, no EXIF, no ICC profile);
4. keeps it only if the saved photo is colorful (mean CIELAB chroma above ``MIN_CHROMA``);
5. (corpus) keeps it only if it is no near-duplicate (``benchmarks.near_duplicates``) of an
   image an evaluation reads, a core photo, a training candidate or a corpus photo kept before.

It then writes the gray demo target (the CIELAB lightness of ``leuven_a`` as an 8-bit PNG),
removes stale files from earlier runs and writes ``manifest.json``. Sources that are missing,
excluded after a visual review, grayscale or nearly colorless are skipped and reported.
The output is deterministic for a given set of installed packages.

Usage::

    python -m tools.make_assets [--assets-dir platform/assets] [--debs /tmp/chromaref-debs]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageOps
from skimage.color import lab2rgb, rgb2lab

MAX_SIDE = 512
JPEG_QUALITY = 92
MIN_CHROMA = 5.0
MAX_TOTAL_BYTES = 6 * 1024 * 1024  # core photos + corpus, all files under photos/
MANIFEST_VERSION = 1

CORPUS_DIR = "corpus"  # under photos/
CORPUS_MAX_SIDE = 320
CORPUS_JPEG_QUALITY = 85

DEMO_TARGET_FILE = "demo_gray_target.png"
DEMO_TARGET_SOURCE = "leuven_a"
DEMO_REFERENCE = "leuven_b"

DEFAULT_ASSETS_DIR = Path(__file__).resolve().parents[1] / "platform" / "assets"
OPENCV_DATA_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
MATE_NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
DOC_DIR = Path("/usr/share/doc")
# where packages that are not installed are fetched (apt-get download) and unpacked
DEFAULT_DEBS_DIR = Path(tempfile.gettempdir()) / "chromaref-debs"

GRAYSCALE_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
CATEGORIES = frozenset(
    {
        "animal",
        "person",
        "food",
        "object",
        "scene",
        "nature",
        "building",
        "painting",
        "interior",
        "water",
        "sky",
    }
)


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def _sklearn_images_dir() -> Path:
    import sklearn

    return Path(sklearn.__file__).parent / "datasets" / "images"


def _matplotlib_sample_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data"


@dataclass(frozen=True)
class Origin:
    """Where a group of sources lives: package label, how to find its folder, and the prefix
    of its photos' names (corpus photos from many packages must not collide)."""

    package: str
    locate: Callable[[], Path]
    prefix: str = ""
    where: str = ""  # the folder as installed, recorded with each file (Debian origins)


class Debian:
    """Folders of Debian packages: installed ones in place, others fetched with ``apt-get
    download`` and unpacked (``dpkg-deb -x``, nothing installed) under ``debs``."""

    debs = DEFAULT_DEBS_DIR

    @classmethod
    def root(cls, package: str) -> Path:
        if (DOC_DIR / package / "copyright").is_file():
            return Path("/")
        root = cls.debs / package
        if not (root / DOC_DIR.relative_to("/") / package / "copyright").is_file():
            cls.debs.mkdir(parents=True, exist_ok=True)
            subprocess.run(["apt-get", "download", "-q", package], cwd=cls.debs, check=True)
            deb = sorted(cls.debs.glob(f"{package}_*.deb"))[-1]
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        return root

    @classmethod
    def origin(cls, package: str, folder: str, prefix: str) -> Origin:
        """The origin of files under ``folder`` (an absolute path once installed)."""
        locate = lambda: cls.root(package) / folder.lstrip("/")  # noqa: E731
        return Origin(f"{package} (Debian)", locate, prefix, folder)


SKIMAGE = Origin("scikit-image (PyPI)", _skimage_data_dir)
SKLEARN = Origin("scikit-learn (PyPI)", _sklearn_images_dir)
MATPLOTLIB = Origin("matplotlib (PyPI)", _matplotlib_sample_dir)
OPENCV = Origin("opencv-doc (Debian)", lambda: OPENCV_DATA_DIR)
MATE = Origin("mate-backgrounds (Debian)", lambda: MATE_NATURE_DIR)


@dataclass(frozen=True)
class Source:
    """One candidate photo and what the manifest says about it.

    ``scene`` groups views of the same scene (stereo pairs, video frames); when it is
    ``None`` the photo's own name is its scene. ``exclude`` gives the reason a source was
    dropped after looking at it (for example: not a photograph). ``alias`` replaces the file
    stem in the name (wallpapers are all called ``1280x1024.jpg``); ``rotate`` turns the
    photo clockwise by that many degrees (an album's own record of how to show it).
    """

    origin: Origin
    file: str
    license: str
    credit: str
    category: str
    scene: str | None = None
    exclude: str | None = None
    alias: str | None = None
    rotate: int = 0

    @property
    def name(self) -> str:
        """Output stem: the origin's prefix, then the file stem (or alias), CamelCase split
        with ``_`` and lowercased."""
        stem = self.alias or Path(self.file).stem
        return self.origin.prefix + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()


# Licensing as stated by each package: scikit-image in the docstrings of skimage/data/
# _fetchers.py (its data/README.txt only says the folder holds sample data); scikit-learn in
# datasets/images/README.txt; matplotlib's sample_data/README.txt states no license, the JPEG's
# own comment names its source; Debian packages in /usr/share/doc/<package>/copyright.
_MIDDLEBURY = (
    "No license stated by scikit-image; Middlebury 2014 stereo benchmark images (Scharstein "
    "et al., GCPR 2014), shipped in scikit-image's BSD-3-Clause package"
)
_MIDDLEBURY_CREDIT = (
    "N. Nesic, P. Westling, X. Wang, Y. Kitajima, G. Krathwohl, D. Scharstein (Middlebury College)"
)
_SKLEARN_LICENSE = "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)"
_OPENCV_LICENSE = (
    "Apache-2.0 AND BSD-3-Clause (Debian copyright, 'Files: *' of OpenCV; "
    "no separate terms for samples/data)"
)
_OPENCV_CREDIT = "OpenCV samples/data: Intel, Willow Garage, OpenCV Foundation and contributors"
_GPL = "GPL-2+ (Debian copyright of mate-backgrounds)"


def _opencv(file: str, category: str, scene: str | None = None, **kw: Any) -> Source:
    return Source(OPENCV, file, _OPENCV_LICENSE, _OPENCV_CREDIT, category, scene, **kw)


def _mate(file: str, credit: str, category: str = "nature") -> Source:
    return Source(MATE, file, _GPL, credit, category)


SOURCES: tuple[Source, ...] = (
    Source(
        SKIMAGE,
        "astronaut.png",
        "Public domain (NASA; 'no known copyright restrictions')",
        "NASA, portrait of astronaut Eileen Collins (NASA Great Images database)",
        "person",
    ),
    Source(SKIMAGE, "chelsea.png", "CC0", "Stefan van der Walt", "animal"),
    Source(
        SKIMAGE, "coffee.png", "CC0", "Rachel Michetti, courtesy of Pikolo Espresso Bar", "food"
    ),
    Source(
        SKIMAGE,
        "rocket.jpg",
        "Public domain (released by SpaceX)",
        "SpaceX, launch of DSCOVR on Falcon 9 (SpaceX Photos, Flickr)",
        "object",
    ),
    Source(SKIMAGE, "motorcycle_left.png", _MIDDLEBURY, _MIDDLEBURY_CREDIT, "object", "motorcycle"),
    Source(
        SKIMAGE, "motorcycle_right.png", _MIDDLEBURY, _MIDDLEBURY_CREDIT, "object", "motorcycle"
    ),
    Source(
        SKLEARN,
        "china.jpg",
        _SKLEARN_LICENSE,
        "danielbuechele (Flickr), retrieved by Robert Layton",
        "building",
    ),
    Source(
        SKLEARN,
        "flower.jpg",
        _SKLEARN_LICENSE,
        "vultilion (Flickr; the README's attribution line says danielbuechele), "
        "retrieved by Robert Layton",
        "nature",
    ),
    Source(
        MATPLOTLIB,
        "grace_hopper.jpg",
        "No license stated by matplotlib; the JPEG comment names its source, Wikimedia Commons "
        "File:Grace_Hopper.jpg (a public-domain U.S. Navy photograph)",
        "U.S. Navy, portrait of Grace Hopper (via Wikimedia Commons)",
        "person",
    ),
    _opencv("aloeL.jpg", "nature", "aloe"),
    _opencv("aloeR.jpg", "nature", "aloe"),
    _opencv("leuvenA.jpg", "building", "leuven"),
    _opencv("leuvenB.jpg", "building", "leuven"),
    _opencv("graf1.png", "scene", "graf"),
    _opencv("graf3.png", "scene", "graf"),
    _opencv("basketball1.png", "person", "basketball"),
    _opencv("basketball2.png", "person", "basketball"),
    _opencv("aero1.jpg", "scene", "aero"),
    _opencv("aero3.jpg", "scene", "aero"),
    _opencv("rubberwhale1.png", "object", "rubberwhale"),
    _opencv("rubberwhale2.png", "object", "rubberwhale"),
    _opencv("fruits.jpg", "food"),
    _opencv("baboon.jpg", "animal"),
    _opencv("butterfly.jpg", "animal"),
    _opencv("home.jpg", "building"),
    _opencv("messi5.jpg", "person"),
    _opencv("squirrel_cls.jpg", "animal"),
    _opencv("HappyFish.jpg", "animal", exclude="cartoon clip-art drawing, not a photograph"),
    _opencv("building.jpg", "building"),
    _opencv("orange.jpg", "food"),
    _opencv("apple.jpg", "food"),
    Source(
        OPENCV,
        "starry_night.jpg",
        _OPENCV_LICENSE + "; the painting itself (1889) is in the public domain",
        "Vincent van Gogh, The Starry Night (1889); " + _OPENCV_CREDIT,
        "painting",
    ),
    _mate("GreenMeadow.jpg", "Timothy Schellhase (2005), Lapo Calamandrei (2008)"),
    _mate("FreshFlower.jpg", "Jens Ansorg (2005)"),
    _mate("LadyBird.jpg", "Charles Barbin (2008)"),
    _mate("YellowFlower.jpg", "Charles Barbin (2008)"),
    _mate("Garden.jpg", "Charles Barbin (2008)"),
    _mate("Dune.jpg", "Marco Cogoni (2007), Hylke Bons (2008)"),
    _mate("Storm.jpg", "Sergey Nazarov (2008)", category="scene"),
)


# ---------------------------------------------------------------------------- reference corpus
# Photos of packages that neither the training set (benchmarks/training_sources.py) nor any
# evaluation set (benchmarks/datasets.py) reads, each folder looked at photo by photo. Licenses
# as each package's /usr/share/doc/<package>/copyright (and the files it names) states them.

KPA = Debian.origin("kphotoalbum", "/usr/share/kphotoalbum/demo", "kpa_")
_KPA_LICENSE = (
    "GPL-2+ (Debian copyright of kphotoalbum: one paragraph for the whole package, demo album "
    "included)"
)
_KPA_CREDIT = "Jesper K. Pedersen and the KPhotoAlbum authors (KPhotoAlbum's demo album)"


def _kpa(file: str, category: str, scene: str | None = None, **kw: Any) -> Source:
    return Source(KPA, file, _KPA_LICENSE, _KPA_CREDIT, category, scene and f"kpa_{scene}", **kw)


TUXPAINT_TEMPLATES = Debian.origin("tuxpaint-data", "/usr/share/tuxpaint/templates", "tuxpaint_")
_TUXPAINT_LICENSE = "GPL-2+ (Debian copyright of tuxpaint-data, 'Files: *')"
_TUXPAINT_CREDIT = "Bill Kendrick (Tux Paint templates, AUTHORS.txt)"


def _tuxpaint(file: str, category: str) -> Source:
    return Source(TUXPAINT_TEMPLATES, file, _TUXPAINT_LICENSE, _TUXPAINT_CREDIT, category)


PLASMA = Debian.origin("plasma-workspace-wallpapers", "/usr/share/wallpapers", "plasma_")


def _plasma(name: str, category: str, size: str = "1280x1024") -> Source:
    return Source(
        PLASMA,
        f"{name}/contents/images/{size}.jpg",
        "GPL-2+ (Debian copyright of plasma-workspace-wallpapers, 'Files: *')",
        "KDE Visual Design Group (Plasma wallpaper " + name + ")",
        category,
        alias=name,
    )


GNOME_FACES = Debian.origin("gnome-control-center-data", "/usr/share/pixmaps/faces", "gnome_")


def _gnome(file: str, category: str) -> Source:
    return Source(
        GNOME_FACES,
        file,
        "GPL-2+ and GPL-3+ and LGPL-2.1+ and LGPL-2+ and Expat and CC0-1.0 (Debian copyright "
        "of gnome-control-center-data, 'Files: *'; no separate terms for the user pictures)",
        "GNOME project (gnome-control-center user pictures)",
        category,
    )


KALZIUM = Debian.origin("kalzium-data", "/usr/share/kalzium/data/toolpics", "kalzium_")
# lab equipment photographed on a table; kolbenprober.png is a labelled cut-out drawing
KALZIUM_PHOTOS = [
    "abzug",
    "becherglas",
    "brechungsmesser",
    "brenner",
    "destillierbruecke",
    "dsc",
    "erlenmeyerkolben",
    "exikator",
    "halter",
    "heizplatte",
    "hplc",
    "messzylinder",
    "moerser",
    "phpapier",
    "pileusball",
    "pipette",
    "rg-halter",
    "rg-staender",
    "rg",
    "rotationsverdampfer",
    "rueckflusskuehler",
    "ruehrfisch",
    "rundkolben",
    "scheidetrichter",
    "schutzbrille",
    "spatel",
    "thermometer",
    "thermometer2",
    "tonschale",
    "trichter",
    "trockenrohr",
    "uhrglas",
    "verteiler",
    "vollpipette",
    "waage",
    "wasserstrahlpumpe",
]


def _kalzium(stem: str) -> Source:
    return Source(
        KALZIUM,
        f"{stem}.jpg",
        "GPL-2.0-or-later (Debian copyright of kalzium-data, 'Files: *')",
        "Kalzium authors (KDE; lab tool pictures)",
        "interior" if stem in {"abzug", "hplc", "rotationsverdampfer"} else "object",
    )


SCRIBUS = Debian.origin("scribus-template", "/usr/share/scribus/templates", "scribus_")
_LEINO = (
    "Public domain (Debian copyright of scribus-template: Riku Leino's templates 'have been "
    "placed into public domain by their author')"
)


def _scribus(file: str, category: str, license: str = _LEINO, credit: str = "Riku Leino") -> Source:
    return Source(SCRIBUS, file, license, credit, category, alias=file.replace("/", "_")[:-4])


OPENCV_EXAMPLES = Debian.origin("opencv-doc", "/usr/share/doc/opencv-doc/examples", "opencv_")


def _opencv_example(file: str, category: str) -> Source:
    return Source(
        OPENCV_EXAMPLES,
        file,
        _OPENCV_LICENSE,
        _OPENCV_CREDIT,
        category,
        alias=file.replace("/data/", "/").replace("/", "_")[:-4],
    )


_HELD_OUT = "held out: the gray group-portrait test photo of benchmarks/bundled_corpus.py"

CORPUS_SOURCES: tuple[Source, ...] = (
    _kpa("anne_helene.jpg", "person"),
    _kpa("bar55.jpg", "person", "bar55"),
    _kpa("bar55_2.jpg", "person", "bar55"),
    _kpa("blackie.jpg", "animal"),
    _kpa("cold_water.jpg", "person"),
    _kpa("donna.jpg", "animal", "donna"),
    _kpa("donna_2.jpg", "animal", "donna"),
    _kpa("grand_canyon_1.jpg", "person", "grand_canyon", rotate=180),
    _kpa("grand_canyon_2.jpg", "person", "grand_canyon"),
    _kpa("grand_canyon_3.jpg", "nature", "grand_canyon"),
    _kpa("jesper.jpg", "person"),
    _kpa("jesper_2.jpg", "person"),
    _kpa("new_wave_1.jpg", "person", "new_wave", rotate=90),
    _kpa("new_wave_2.jpg", "person", "new_wave", exclude=_HELD_OUT),
    _kpa("pool.jpg", "person", "pool"),
    _kpa("pool_2.jpg", "person", "pool", rotate=270),
    _kpa("skagen.jpg", "water", "skagen"),
    _kpa("skagen_2.jpg", "water", "skagen"),
    _kpa("snow.jpg", "scene"),
    _kpa("spiff.jpg", "animal", "spiff"),
    _kpa("spiff_2.jpg", "animal", "spiff"),
    _kpa("sunset.jpg", "sky"),
    _kpa("wayne.jpg", "person", rotate=90),
    _kpa("qt-logo.jpg", "object", exclude="a logo, not a photograph"),
    *(
        _tuxpaint(f"{stem}.jpg", category)
        for stem, category in (
            ("burnt_bark", "nature"),
            ("cliff", "nature"),
            ("corn_maze", "nature"),
            ("jellyfish", "animal"),
            ("lighthouse", "building"),
            ("mossy_bark", "nature"),
            ("mossy_log", "nature"),
            ("mudstone", "nature"),
            ("ocean_splash", "water"),
            ("ocean_waves", "water"),
            ("redwoods_above", "nature"),
            ("rocks", "nature"),
            ("sheep", "animal"),
            ("spiders_web", "nature"),
            ("sun_behind_clouds", "sky"),
            ("sun_behind_leaves", "nature"),
            ("trees_above", "nature"),
            ("trees_at_dusk", "nature"),
            ("wool_mill_machine", "interior"),
        )
    ),
    _plasma("BytheWater", "water"),
    _plasma("ColdRipple", "water"),
    _plasma("ColorfulCups", "object", size="2560x1600"),
    _plasma("DarkestHour", "water"),
    _plasma("EveningGlow", "water"),
    _plasma("FallenLeaf", "nature"),
    _plasma("Kite", "sky"),
    _plasma("OneStandsOut", "nature"),
    _plasma("Path", "nature"),
    _plasma("summer_1am", "water"),
    *(
        _gnome(f"{stem}.jpg", category)
        for stem, category in (
            ("bicycle", "scene"),
            ("book", "object"),
            ("calculator", "object"),
            ("cat", "animal"),
            ("coffee2", "food"),
            ("flower2", "nature"),
            ("gamepad", "object"),
            ("guitar2", "object"),
            ("headphones", "object"),
            ("hummingbird", "animal"),
            ("mountain", "nature"),
            ("plane", "sky"),
            ("surfer", "person"),
            ("tomatoes", "food"),
            ("tree", "nature"),
        )
    ),
    *(_kalzium(stem) for stem in KALZIUM_PHOTOS),
    _scribus("br2/brightness.jpg", "sky"),
    _scribus("br2/halfmoon.jpg", "sky"),
    _scribus("br2/moon.jpg", "sky"),
    _scribus("br2/nature.jpg", "nature"),
    _scribus("br2/sunset.jpg", "sky"),
    _scribus("cal2/moon.jpg", "sky"),
    _scribus("menu2/pizza.jpg", "food"),
    _scribus("menu1/teriyaki.png", "food"),
    _scribus(
        "scribus_project_de/craigbradney.jpg",
        "person",
        "GPL-2+ (Debian copyright of scribus-template: Maciej Hanski's sample presentations)",
        "Maciej Hanski (Scribus sample presentation: portrait of Craig Bradney)",
    ),
    _opencv_example("hfs/data/000.jpg", "animal"),
    _opencv_example("hfs/data/001.jpg", "water"),
    _opencv_example("hfs/data/002.jpg", "nature"),
    _opencv_example("alphamat/input_images/plant.jpg", "nature"),
    *(_opencv_example(f"text/scenetext0{n}.jpg", "scene") for n in range(1, 7)),
)


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma ``sqrt(a² + b²)`` of an (H, W, 3) uint8 sRGB image."""
    lab = rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def gray_from_lightness(rgb: np.ndarray) -> Image.Image:
    """The gray sRGB image with the same CIELAB lightness as ``rgb``, as 8-bit mode "L"."""
    lab = rgb2lab(rgb)
    lab[..., 1:] = 0.0
    gray = lab2rgb(lab)[..., 0]
    return Image.fromarray(np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8), mode="L")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert an image with an embedded non-sRGB ICC profile to sRGB; drop the profile."""
    icc = image.info.get("icc_profile")
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if not ImageCms.getProfileDescription(profile).strip().startswith("sRGB"):
            image = ImageCms.profileToProfile(
                image.convert("RGB"),
                profile,
                ImageCms.createProfile("sRGB"),
                renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
                outputMode="RGB",
            )
    image = image.convert("RGB")
    image.info.pop("icc_profile", None)
    return image


def downscale(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """Lanczos-downscale so the long side is at most ``max_side``; smaller images are kept."""
    scale = max_side / max(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def save_jpeg(image: Image.Image, path: Path, quality: int = JPEG_QUALITY) -> None:
    """Save as baseline RGB JPEG at ``quality`` with no EXIF or ICC metadata."""
    image.save(
        path,
        format="JPEG",
        quality=quality,
        subsampling="4:2:0",
        optimize=True,
        progressive=False,
    )


@dataclass(frozen=True)
class Built:
    """A photo written to the photos folder, with its manifest entry."""

    name: str
    entry: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """Where and how a set of photos is written: its folder under ``photos/``, the long side,
    the JPEG quality and an optional screen (RGB -> reason to drop it, or None)."""

    folder: str = ""
    max_side: int = MAX_SIDE
    quality: int = JPEG_QUALITY
    screen: Callable[[str, np.ndarray], str | None] | None = None


CORE = Target()


def build_photo(
    source: Source, photos_dir: Path, target: Target = CORE
) -> tuple[Built | None, str | None]:
    """Write one source photo; return ``(built, None)`` or ``(None, reason it was dropped)``."""
    if source.category not in CATEGORIES:
        raise ValueError(f"{source.file}: unknown category {source.category!r}")
    if source.exclude:
        return None, f"excluded after review: {source.exclude}"
    path = source.origin.locate() / source.file
    if not path.is_file():
        return None, f"source file not found: {path}"
    with Image.open(path) as opened:
        if opened.mode in GRAYSCALE_MODES:
            return None, f"grayscale source (mode {opened.mode})"
        image = _to_srgb(ImageOps.exif_transpose(opened))
    if source.rotate:
        image = image.rotate(-source.rotate, expand=True)
    rgb = np.asarray(image)
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return None, "grayscale source (R = G = B everywhere)"

    relative = f"{target.folder}/{source.name}.jpg" if target.folder else f"{source.name}.jpg"
    out = photos_dir / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    save_jpeg(downscale(image, target.max_side), out, target.quality)
    with Image.open(out) as saved:
        width, height = saved.size
        saved_rgb = np.asarray(saved.convert("RGB"))
    chroma = mean_chroma(saved_rgb)
    reason = None
    if chroma <= MIN_CHROMA:
        reason = f"nearly colorless (mean Lab chroma {chroma:.2f} <= {MIN_CHROMA})"
    elif target.screen is not None:
        reason = target.screen(relative, saved_rgb)
    if reason:
        out.unlink()
        return None, reason

    where = source.origin.where
    entry = {
        "name": source.name,
        "file": relative,
        "source_package": source.origin.package,
        "source_file": f"{where}/{source.file}" if where else source.file,
        "license": source.license,
        "credit": source.credit,
        "width": width,
        "height": height,
        "scene": source.scene or source.name,
        "category": source.category,
    }
    return Built(source.name, entry), None


class NearDuplicateScreen:
    """Drops a corpus photo that is a near-duplicate of an image an evaluation reads (or a core
    photo), of a training candidate, or of a corpus photo kept before it."""

    def __init__(self) -> None:
        from benchmarks.near_duplicates import Fingerprints, evaluation_fingerprints

        self.references = evaluation_fingerprints()  # reads the core photos just written
        self.training = Fingerprints()
        for name, rgb in _training_candidates():
            self.training.add(name, _fingerprint(rgb))
        self.kept = Fingerprints()

    def __call__(self, relative: str, rgb: np.ndarray) -> str | None:
        print_ = _fingerprint(rgb)
        for what, known in (
            ("evaluation or core photo", self.references),
            ("training candidate", self.training),
            ("corpus photo", self.kept),
        ):
            match = known.best(print_)
            if match.duplicate:
                return (
                    f"near-duplicate of {what} {match.name} (correlation "
                    f"{match.correlation:.3f}, ab diff {match.ab_diff:.2f})"
                )
        self.kept.add(relative, print_)
        return None

    def summary(self) -> dict[str, Any]:
        from benchmarks.near_duplicates import MAX_AB_DIFF, THRESHOLD

        return {
            "rule": f"gray correlation >= {THRESHOLD}, mean |ab| diff <= {MAX_AB_DIFF}, "
            "as is or mirrored (benchmarks.near_duplicates)",
            "evaluation_and_core_images": len(self.references),
            "training_candidates": len(self.training),
        }


def _fingerprint(rgb: np.ndarray) -> np.ndarray:
    from benchmarks.near_duplicates import fingerprint

    return fingerprint(rgb)


def _training_candidates() -> Iterator[tuple[str, np.ndarray]]:
    """``(name, RGB)`` of every training candidate (benchmarks.training_sources), prepared as
    the training set prepares it; a source whose package is missing is reported and skipped."""
    from benchmarks.datasets import MissingSourceError
    from benchmarks.training_set import prepare
    from benchmarks.training_sources import READERS

    for source, reader in READERS.items():
        try:
            for candidate in reader():
                try:
                    with candidate.load() as opened:
                        image, _ = prepare(opened)
                except OSError as error:
                    print(f"  training candidate {candidate.original} unreadable: {error}")
                    continue
                yield candidate.original, np.asarray(downscale(image, 1024))
        except MissingSourceError as error:
            print(f"  training source {source} not checked: {error}")


def _build_set(
    sources: Sequence[Source], photos_dir: Path, target: Target, dropped: list[tuple[str, str]]
) -> list[Built]:
    built: list[Built] = []
    for source in sources:
        result, reason = build_photo(source, photos_dir, target)
        if result is None:
            dropped.append((f"{source.origin.package}: {source.file}", str(reason)))
        else:
            built.append(result)
            print(
                f"  wrote {result.entry['file']:36s} {result.entry['width']}x"
                f"{result.entry['height']}"
            )
    return built


def _remove_stale(folder: Path, keep: set[Path]) -> None:
    for stale in sorted(folder.iterdir()):
        if stale.is_file() and stale.suffix in {".jpg", ".png"} and stale not in keep:
            print(f"  removed stale {stale.name}")
            stale.unlink()


def build(assets_dir: Path) -> int:
    """Rebuild photos, corpus, demo target and manifest under ``assets_dir``; return an exit
    code."""
    photos_dir = assets_dir / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)

    dropped: list[tuple[str, str]] = []
    built = _build_set(SOURCES, photos_dir, CORE, dropped)
    names = {b.name for b in built}
    if DEMO_TARGET_SOURCE not in names or DEMO_REFERENCE not in names:
        print(f"error: demo needs {DEMO_TARGET_SOURCE} and {DEMO_REFERENCE}", file=sys.stderr)
        return 1
    with Image.open(photos_dir / f"{DEMO_TARGET_SOURCE}.jpg") as color:
        gray = gray_from_lightness(np.asarray(color.convert("RGB")))
    gray.save(photos_dir / DEMO_TARGET_FILE, format="PNG", optimize=True)
    keep = {photos_dir / b.entry["file"] for b in built} | {photos_dir / DEMO_TARGET_FILE}
    _remove_stale(photos_dir, keep)

    print("checking the corpus against evaluation, core and training images ...")
    screen = NearDuplicateScreen()
    corpus_target = Target(CORPUS_DIR, CORPUS_MAX_SIDE, CORPUS_JPEG_QUALITY, screen)
    corpus = _build_set(CORPUS_SOURCES, photos_dir, corpus_target, dropped)
    _remove_stale(photos_dir / CORPUS_DIR, {photos_dir / b.entry["file"] for b in corpus})

    manifest = {
        "version": MANIFEST_VERSION,
        "photos": [b.entry for b in built],
        "corpus": [b.entry for b in corpus],
        "corpus_near_duplicate_check": screen.summary(),
        "demo": {
            "target": DEMO_TARGET_FILE,
            "target_source": DEMO_TARGET_SOURCE,
            "reference": f"{DEMO_REFERENCE}.jpg",
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (assets_dir / "manifest.json").write_text(text, encoding="utf-8")

    total = sum(p.stat().st_size for p in photos_dir.rglob("*") if p.is_file())
    print(
        f"{len(built)} photos + demo target, {len(corpus)} corpus photos, "
        f"{total / 1e6:.2f} MB in {photos_dir}"
    )
    for what, why in dropped:
        print(f"  dropped {what}: {why}")
    if total > MAX_TOTAL_BYTES:
        print(f"error: photos total {total} bytes > {MAX_TOTAL_BYTES}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--assets-dir",
        type=Path,
        default=DEFAULT_ASSETS_DIR,
        help="folder that receives photos/ and manifest.json (default: %(default)s)",
    )
    parser.add_argument(
        "--debs",
        type=Path,
        default=DEFAULT_DEBS_DIR,
        help="where packages that are not installed are downloaded and unpacked "
        "(default: %(default)s)",
    )
    args = parser.parse_args(argv)
    Debian.debs = args.debs
    return build(args.assets_dir)


if __name__ == "__main__":
    raise SystemExit(main())
