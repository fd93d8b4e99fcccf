"""Only what pyproject.toml cannot say: the top-level `loadtests/` folder, where Locust users
look for locustfiles, is installed as the subpackage `semichat.loadtests`, so one copy serves
`locust -f loadtests/chat.py` in a checkout and `semichat simulate` in an installed package."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["semichat", "semichat.*"]), "semichat.loadtests"],
    package_dir={"semichat.loadtests": "loadtests"},
)
