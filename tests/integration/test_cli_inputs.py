"""`genmedia generate` with pictures: --image/--last-frame/--input upload local files, --from chains a
job's output; run as a user would, against real functions-framework processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from tests.conftest import DatabaseHandle
from tests.servers import ServedFunction, serve

GENMEDIA = Path(sys.executable).parent / "genmedia"


@pytest.fixture(scope="module")
def generation(test_database: DatabaseHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedFunction]:
    tmp = tmp_path_factory.mktemp("cli-inputs")
    env = {"GENERATION_BACKEND": "local", "LOCAL_VIDEO_DELAY_SECONDS": "0.5", "VIDEO_POLL_INTERVAL_SECONDS": "0",
           "DATABASE_URL": test_database.url, "LOCAL_DATA_DIR": str(tmp / "media")}
    with serve("generation", env, tmp=tmp) as served:
        yield served


@pytest.fixture
def env(generation: ServedFunction, api_key: str, tmp_path: Path) -> dict[str, str]:
    shell = {k: v for k, v in os.environ.items() if not k.startswith("GENMEDIA_")}
    shell.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
                  "GENMEDIA_URL": generation.url, "GENMEDIA_API_KEY": api_key})
    return shell


def genmedia(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GENMEDIA), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def save(path: Path, colour: tuple[int, int, int], fmt: str = "PNG") -> Path:
    image = Image.new("RGB", (320, 180), colour)
    image.paste((255, 255, 255), (0, 0, 160, 90))
    image.save(path, fmt)
    return path


def first_frame_of(uri: str) -> Image.Image:
    with av.open(urlsplit(uri).path) as container:
        return next(container.decode(video=0)).to_image().convert("RGB")


def close(a: Image.Image, path: Path) -> bool:
    expected = ImageOps.fit(Image.open(path).convert("RGB"), a.size)
    return sum(ImageStat.Stat(ImageChops.difference(a, expected)).mean) / 3 < 6


def test_image_uploads_the_file_and_the_video_starts_on_it(env: dict[str, str], tmp_path: Path) -> None:
    cat = save(tmp_path / "cat.png", (200, 50, 50))
    save(tmp_path / "end.jpg", (20, 60, 200), "JPEG")
    result = genmedia("generate", "video", "the cat wakes up", "--model", "veo-3.1-fast-generate-preview",
                      "--image", "cat.png", "--last-frame", "end.jpg", "--duration", "4", "--wait",
                      env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "uploaded cat.png as upl_" in result.stderr and "(320x180)" in result.stderr
    [uri] = result.stdout.split()
    assert close(first_frame_of(uri), cat)


def test_from_chains_an_image_jobs_output(env: dict[str, str], tmp_path: Path) -> None:
    made = genmedia("--json", "generate", "image", "a lighthouse", "--aspect-ratio", "16:9", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    result = genmedia("generate", "video", "waves", "--from", f"{job['id']}:0", "--duration", "4", "--wait",
                      env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert close(first_frame_of(result.stdout.strip()), Path(urlsplit(job["outputs"][0]["uri"]).path))


def test_input_uploads_every_picture_to_compose(env: dict[str, str], tmp_path: Path) -> None:
    save(tmp_path / "a.png", (10, 200, 10)), save(tmp_path / "b.webp", (200, 200, 10), "WEBP")
    result = genmedia("generate", "image", "together", "--input", "a.png", "--input", "b.webp", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(".png") and result.stderr.count("uploaded") == 2


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--image", "missing.png"], 2, "missing.png: cannot read it"),
    (["--image", "notes.png"], 2, "notes.png: not a PNG, JPEG or WebP picture"),
    (["--from", "gen_abc", "--image", "gen_def"], 2, "give --image or --from, not both"),
    (["--from", "cat.png"], 2, "--from takes a job id"),
    (["--from", "gen_doesnotexist:0"], 1, "404 INPUT_NOT_FOUND"),
])
def test_bad_pictures_are_explained(env: dict[str, str], tmp_path: Path, args: list[str], code: int,
                                    message: str) -> None:
    (tmp_path / "notes.png").write_text("not a picture\n")
    result = genmedia("generate", "video", "p", *args, env=env, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
