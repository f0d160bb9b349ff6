"""`check --output PATH`: a regular file is replaced atomically, anything else is left what it is.

Issue 12: as root, `--output /dev/full` turned the device into a regular file (a root crontab with
`--output /dev/null` would do that to /dev/null). The rename is only for a regular file or a path
that does not exist; a device, FIFO or other special file is written to; a symlink is followed;
`-` is stdout; a failed write leaves no temporary file.
"""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arrctl.checking import DeliveryFailed, write_report
from conftest import in_child

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
REPORT = b"ARRCTL OK - fine | 'new_failures'=0;;0;0\n"


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def device(path: Path, minor: int) -> Path:
    """A character device like /dev/null (1, 3) or /dev/full (1, 7), made in a temporary directory."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def test_a_regular_file_is_replaced_by_rename_keeping_its_mode(tmp_path: Path):
    target = tmp_path / "arrctl.prom"
    target.write_bytes(b"old")
    target.chmod(0o640)
    before = target.stat().st_ino
    write_report(target, REPORT)
    assert target.read_bytes() == REPORT and target.stat().st_ino != before
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    write_report(tmp_path / "new.prom", REPORT)
    assert stat.S_IMODE((tmp_path / "new.prom").stat().st_mode) == 0o644
    assert listing(tmp_path) == ["arrctl.prom", "new.prom"]


def test_a_symlink_is_followed_and_its_target_replaced(tmp_path: Path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "arrctl.prom"
    real.write_bytes(b"old")
    link = tmp_path / "link.prom"
    link.symlink_to(real)
    write_report(link, REPORT)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == REPORT and listing(tmp_path / "real") == ["arrctl.prom"]
    dangling = tmp_path / "dangling.prom"
    dangling.symlink_to(tmp_path / "real" / "later.prom")
    write_report(dangling, REPORT)
    assert dangling.is_symlink() and (tmp_path / "real" / "later.prom").read_bytes() == REPORT


def test_a_character_device_is_written_to_and_stays_a_device(tmp_path: Path):
    null = device(tmp_path / "null", 3)
    write_report(null, REPORT)
    assert stat.S_ISCHR(null.lstat().st_mode)
    full = device(tmp_path / "full", 7)
    with pytest.raises(DeliveryFailed, match=r"full: cannot write report: No space left on device"):
        write_report(full, REPORT)
    assert stat.S_ISCHR(full.lstat().st_mode)
    link = tmp_path / "to-null"
    link.symlink_to(null)
    write_report(link, REPORT)
    assert link.is_symlink() and stat.S_ISCHR(null.lstat().st_mode)
    assert listing(tmp_path) == ["full", "null", "to-null"]


def test_a_fifo_is_written_to_its_reader(tmp_path: Path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_report(fifo, REPORT * 10_000)  # more than a pipe holds: the writer waits for the reader
    reader.join(10)
    assert received == [REPORT * 10_000]
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and listing(tmp_path) == ["report.fifo"]


def test_a_fifo_nobody_reads_is_an_error_after_the_wait_not_a_hang(tmp_path: Path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    with pytest.raises(DeliveryFailed, match=r"report.fifo: cannot write report: no reader took it within 0.2s"):
        write_report(fifo, REPORT, wait_s=0.2)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and listing(tmp_path) == ["report.fifo"]


def _write_past_the_file_size_limit(path: str) -> str:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # Python ignores SIGXFSZ: write fails EFBIG
    try:
        write_report(Path(path), b"x" * 100_000)
    except DeliveryFailed as exc:
        return str(exc)
    return "written"


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path):
    target = tmp_path / "arrctl.prom"
    target.write_bytes(b"old")
    message = in_child(_write_past_the_file_size_limit, str(target))
    assert message == f"{target}: cannot write report: File too large"
    assert listing(tmp_path) == ["arrctl.prom"] and target.read_bytes() == b"old"


def test_a_directory_is_refused(tmp_path: Path):
    with pytest.raises(DeliveryFailed, match="Is a directory"):
        write_report(tmp_path, REPORT)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}


@pytest.mark.timeout(90)
def test_check_output_dash_is_stdout_and_a_device_stays_a_device(tmp_path: Path):
    dash = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path / "s"), "check", "--output", "-"],
                          capture_output=True, text=True, timeout=60, env=_env(), cwd=tmp_path)
    assert dash.returncode == 2 and dash.stdout.startswith("ARRCTL CRITICAL - ")
    assert not (tmp_path / "-").exists()
    full = device(tmp_path / "full", 7)
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path / "s"), "check", "--output", str(full)],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == f"arrctl: error: {full}: cannot write report: No space left on device\n"
    assert stat.S_ISCHR(full.lstat().st_mode) and listing(tmp_path) == ["full", "s"]
