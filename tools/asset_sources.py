"""Where the bundled photos come from: the packages, their folders, and one record per photo.

``SOURCES`` are the core photos (tests, benchmarks, the demo); ``CORPUS_SOURCES`` the reference
corpus that ``--auto`` retrieves from on a fresh machine. Each record carries the license and
credit as its package states them; ``tools.make_assets`` turns the records into files and the
manifest, and the training-set builder reads them to keep bundled photos out of training.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPENCV_DATA_DIR = Path("/usr/share/doc/opencv-doc/examples/data")
MATE_NATURE_DIR = Path("/usr/share/backgrounds/mate/nature")
DOC_DIR = Path("/usr/share/doc")
# where packages that are not installed are fetched (apt-get download) and unpacked
DEFAULT_DEBS_DIR = Path(tempfile.gettempdir()) / "chromaref-debs"


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


SCRATCH = Debian.origin("scratch", "/usr/share/scratch/Media/Backgrounds", "scratch_")
# the photographed backgrounds; the drawn ones (party-room, room1-3, spotlight-stage,
# woods-and-bench, graffiti, school2, basketball-court2, the .gif files) are left out
SCRATCH_PHOTOS = {
    "Indoors": ("chalkboard", "clothing-store", "hall", "kitchen", "the-movies-inside"),
    "Nature": (
        "beach-malibu",
        "canyon",
        "flower-bed",
        "forest",
        "garden-rock",
        "grand-canyon",
        "gravel-desert",
        "hill",
        "lake",
        "moon",
        "pathway",
        "tree",
        "water-and-rocks",
        "wave",
    ),
    "Outdoors": (
        "all-sports-mural",
        "atom-playground",
        "bench-with-view",
        "berkeley-mural",
        "boardwalk",
        "brick-wall-and-stairs",
        "brick-wall1",
        "brick-wall2",
        "building-at-mit",
        "building-fireproof",
        "castle",
        "city-with-water",
        "city-with-water2",
        "driveway",
        "hallway_outdoors",
        "hay_field",
        "houses",
        "mansion",
        "mural-faro",
        "parking-ramp",
        "pool",
        "route66",
        "silos",
        "the-movies",
        "train-tracks1",
        "train-tracks2",
        "village",
        "wooden-house",
    ),
    "Sports": (
        "baseball-field",
        "basketball-court1-a",
        "basketball-court1-b",
        "football-field",
        "playing-field",
        "tennis-backboard",
    ),
}
_SCRATCH_CATEGORY = {"Indoors": "interior", "Nature": "nature", "Outdoors": "building"}
_SCRATCH_SCENES = {"basketball-court1-a": "court1", "basketball-court1-b": "court1"}


def _scratch(folder: str, stem: str) -> Source:
    return Source(
        SCRATCH,
        f"{folder}/{stem}.jpg",
        "CC-BY-SA-3.0 (Debian copyright of scratch, 'Files: Help/* Media/* Projects')",
        "Massachusetts Institute of Technology (Scratch 1.4 media library)",
        _SCRATCH_CATEGORY.get(folder, "scene"),
        _SCRATCH_SCENES.get(stem) and "scratch_" + _SCRATCH_SCENES[stem],
        alias=stem.replace("-", "_"),
    )


GIMP_HELP = Debian.origin("gimp-help-en", "/usr/share/gimp/2.0/help/en/images", "gimp_")
# the unedited photos the manual's examples start from (the edited results are left out)
GIMP_HELP_PHOTOS = (
    ("filters/examples/taj_orig.jpg", "building", "taj_mahal"),
    ("filters/examples/light-and-shadow/vignette-ex-orig.jpg", "animal", "squirrel"),
    ("filters/examples/distort/spherize-ex-orig.jpg", "nature", "daisies"),
    ("filters/examples/map/pan-project-origin.jpg", "scene", "panorama"),
    ("toolbox/3DTransf-orig.jpg", "object", "floppy_disks"),
    ("tutorials/quickie-flip-example-source.jpg", "person", "guards"),
    ("tutorials/quickie-jpeg-example.jpg", "object", "red_car"),
    ("tutorials/quickie-crop-example-source.jpg", "animal", "duck"),
    ("tutorials/quickie-rotate-example-source.jpg", "interior", "stained_glass"),
    ("tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg", "scene", "orchard_truck"),
    ("tutorials/tone-mapping/power-lines.jpg", "sky", "power_lines"),
    ("tutorials/tone-mapping/tree-exposed-for-sky-ground-is-dark.jpg", "nature", "tree"),
)


def _gimp_help(file: str, category: str, alias: str) -> Source:
    return Source(
        GIMP_HELP,
        file,
        "GFDL-1.2+ with no invariant sections (Debian copyright of gimp-help-common, for "
        "gimp-help-en, 'Files: *')",
        "The GIMP Documentation Team (GIMP user manual)",
        category,
        alias=alias,
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
    *(_scratch(folder, stem) for folder, stems in SCRATCH_PHOTOS.items() for stem in stems),
    *(_gimp_help(*photo) for photo in GIMP_HELP_PHOTOS),
)
