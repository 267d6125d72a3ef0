"""The `director` command make venv writes (director/launcher.py): python -S with the
venv's paths, the same sys.path `site` gives, a later pip install's .pth still seen."""

import os
import subprocess
import sys

from director import launcher

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOW = "import sys; print(sys.flags.no_site); print(repr(sys.path[1:]))\n"


def _run(script: str, *args: str) -> list[str]:
    out = subprocess.run([script, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def _probe(tmp_path, site: str) -> str:
    """A launcher for this interpreter whose `run()` shows its flags and path."""
    target = tmp_path / "director"
    assert launcher.write(str(target), sys.executable, site)
    text = target.read_text().replace("from director.cli import run  # noqa: E402\n\nrun()\n",
                                      SHOW)
    target.write_text(text)
    return str(target)


def test_the_launcher_puts_site_s_paths_without_site(tmp_path) -> None:
    site = launcher.site_packages()
    flags, path = _run(_probe(tmp_path, site))
    assert flags == "1"  # -S: no site, no sitecustomize, no .pth import lines
    with_site = subprocess.run([sys.executable, "-c", "import sys; print(repr(sys.path[1:]))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert path == with_site  # the same entries in the same order (the bundle's check)


def test_a_pth_added_later_is_read(tmp_path) -> None:
    site = tmp_path / "site"
    extra = tmp_path / "extra"
    site.mkdir()
    extra.mkdir()
    (site / "a.pth").write_text(f"import os; os._exit(3)\n# comment\n{tmp_path / 'gone'}\n")
    script = _probe(tmp_path, str(site))
    assert eval(_run(script)[1])[-1] == str(site)  # nothing from a.pth: no such directory
    (site / "b.pth").write_text(f"{extra}\n{extra}\n")  # site-packages changed since
    assert eval(_run(script)[1])[-2:] == [str(site), str(extra)]


def test_the_installed_command_is_the_launcher() -> None:
    cmd = os.path.join(ROOT, ".venv", "bin", "director")
    with open(cmd) as f:
        first = f.readline()
    assert first.startswith("#!") and first.rstrip().endswith(" -S"), first
    assert _run(cmd, "--version") == ["director 0.1.0"]


def test_unchanged_launcher_is_not_rewritten(tmp_path) -> None:
    target = tmp_path / "director"
    site = launcher.site_packages()
    assert launcher.write(str(target), sys.executable, site)
    assert not launcher.write(str(target), sys.executable, site)
