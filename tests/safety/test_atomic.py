"""The atomic-write helper: a failed write leaves the previous file and no temporary one, with one line."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from heatlens.data.atomic import WriteError, write_text_atomic, write_with


def test_a_write_that_fails_midway_keeps_the_previous_file(tmp_path) -> None:
    target = write_text_atomic(tmp_path / "index.json", '{"good": 1}', "index")

    def half_then_fail(tmp):
        tmp.write_text('{"partial"')
        raise OSError(28, "No space left on device")  # ENOSPC, as a full disk raises it

    with pytest.raises(WriteError, match=rf"^could not write index {target}: no space left on the device$"):
        write_with(target, half_then_fail, "index")
    assert target.read_text() == '{"good": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_a_read_only_folder_is_one_line_naming_the_path(tmp_path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(WriteError, match=rf"could not write report {tmp_path / 'report.md'}: the folder is not writable"):
            write_text_atomic(tmp_path / "report.md", "# r", "report")
    finally:
        tmp_path.chmod(0o755)


def test_the_file_size_limit_of_the_kernel_gives_one_line_and_no_file(tmp_path) -> None:
    """A real EFBIG from the kernel (RLIMIT_FSIZE in a subprocess), not a simulated one."""
    script = ("import sys; from heatlens.data.atomic import write_text_atomic, WriteError\n"
              "try:\n    write_text_atomic(sys.argv[1], 'x' * 100_000, 'cache entry')\n"
              "except WriteError as e:\n    print(e)")
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))  # noqa: E731
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.bin")], capture_output=True,
                          text=True, preexec_fn=limit, timeout=120)
    assert done.stdout.strip() == f"could not write cache entry {tmp_path / 'big.bin'}: file size limit reached"
    assert list(tmp_path.iterdir()) == []
