"""The images cdk deploy builds: their platform, their requirements, and the checks make check-deploy runs."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.check_lambda_imports import REFERENCE_STAND_IN, image_handlers
from deploy.check_wheels import pip_resolve_command
from deploy.images import IMAGES, REPOSITORY_ROOT, ImagePlatformError, image_platform


def _requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


@pytest.mark.parametrize("image", IMAGES, ids=lambda image: image.name)
def test_each_image_runs_the_python_the_tests_run_on_a_glibc_the_pinned_wheels_accept(image):
    platform = image_platform(image.dockerfile)
    assert platform.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    requires = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={platform.python},<3.{int(platform.python.split('.')[1]) + 1}"
    assert "manylinux_2_28_x86_64" in platform.platform_tags  # numpy, scipy, pillow and torch publish 2_27/2_28 wheels


@pytest.mark.parametrize("image", IMAGES, ids=lambda image: image.name)
def test_each_image_installs_its_requirements_files_from_wheels_only(image):
    text = image.dockerfile.read_text()
    assert "pip install --only-binary=:all:" in text
    for requirements in image.requirements:
        assert requirements.relative_to(REPOSITORY_ROOT).as_posix() in text


def test_the_lambda_image_runs_handlers_through_the_runtime_interface_client():
    text = (REPOSITORY_ROOT / "lambdas" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["/usr/local/bin/python", "-m", "awslambdaric"]' in text
    assert "awslambdaric" in _requirement_pins(REPOSITORY_ROOT / "lambdas" / "runtime-requirements.txt")


def test_the_job_image_installs_pyprojects_core_and_detector_pins():
    project = tomllib.loads((REPOSITORY_ROOT / "pyproject.toml").read_text())["project"]
    expected = {}
    for dependency in project["dependencies"] + project["optional-dependencies"]["detector"]:
        name, version = dependency.split("==")
        expected[re.sub(r"\[.*\]", "", name).lower()] = version
    assert _requirement_pins(REPOSITORY_ROOT / "sagemaker_jobs" / "requirements.txt") == expected
    assert (
        'ENTRYPOINT ["python", "-m", "sagemaker_jobs.container"]'
        in (REPOSITORY_ROOT / "sagemaker_jobs" / "Dockerfile").read_text()
    )


def test_amazon_linux_2_lambda_base_accepts_no_manylinux_2_27_wheel(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("# old\nFROM public.ecr.aws/lambda/python:3.11\nRUN pip install numpy\n")
    platform = image_platform(dockerfile)
    assert (platform.python, platform.glibc) == ("3.11", (2, 26))
    assert "manylinux_2_26_x86_64" in platform.platform_tags and "manylinux_2_27_x86_64" not in platform.platform_tags
    assert "manylinux2014_x86_64" in platform.platform_tags


def test_an_unknown_base_image_is_a_clear_error(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM --platform=linux/amd64 ubuntu:24.04 AS build\n")
    with pytest.raises(ImagePlatformError, match="'ubuntu:24.04' is not one whose glibc is known"):
        image_platform(dockerfile)


def test_the_wheel_check_asks_pip_for_wheels_of_every_accepted_tag(tmp_path):
    platform = image_platform(IMAGES[0].dockerfile)
    command = pip_resolve_command(platform, IMAGES[0].requirements, tmp_path / "t", tmp_path / "r.json")
    assert "--only-binary=:all:" in command and "--dry-run" in command
    assert command[command.index("--python-version") + 1] == "3.11"
    platforms = [command[i + 1] for i, word in enumerate(command) if word == "--platform"]
    assert platforms == platform.platform_tags and platforms[0] == "manylinux_2_36_x86_64"


def test_the_import_check_takes_every_image_function_and_its_environment(tmp_path):
    template = {
        "Resources": {
            "A": {"Type": "AWS::Lambda::Function", "Properties": {
                "PackageType": "Image", "ImageConfig": {"Command": ["lambdas.loop.finalize.handler"]},
                "Environment": {"Variables": {"DATA_BUCKET": {"Ref": "Bucket"}, "IMAGE_URL_SECONDS": "900"}}}},
            "B": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "nodejs20.x", "Handler": "index.handler"}},
            "C": {"Type": "AWS::S3::Bucket"},
        }
    }  # fmt: skip
    path = tmp_path / "stack.template.json"
    path.write_text(json.dumps(template))
    assert image_handlers([path]) == {
        "lambdas.loop.finalize.handler": {"DATA_BUCKET": REFERENCE_STAND_IN, "IMAGE_URL_SECONDS": "900"}
    }
