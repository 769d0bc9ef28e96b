"""Every CLI mistake is one line, `fimg: <message>`, and a non-zero exit: never a traceback."""
from __future__ import annotations

import pytest

from fimg_service.cli import main


@pytest.fixture
def fimg(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIMG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FIMG_DATABASE_URL", raising=False)

    def run(*args) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    assert run("bank", "create", "b")[0] == 0
    assert run("db", "upgrade")[1] == "database schema: up to date\n"
    return run


def test_mistakes_are_one_line_and_a_non_zero_exit(fimg, tmp_path):
    bad_csv = tmp_path / "records.txt"
    bad_csv.write_text("record_id,md5\nr1,00\n")
    good_csv = tmp_path / "records.csv"
    good_csv.write_text(f"record_id,md5\nr1,{'0' * 32}\n")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("just text")
    cases = {
        ("bank", "create", "b"): "a bank named 'b' already exists",
        ("bank", "import", "nope", good_csv): "no bank named 'nope'",
        ("bank", "import", "b", tmp_path / "missing.csv"): "missing.csv",
        ("bank", "import", "b", bad_csv): "cannot tell the bank format",
        ("bank", "add", "nope", not_image): "no bank named 'nope'",
        ("bank", "add", "b", not_image, good_csv, "--record-id", "r"): "one file",
        ("bank", "export", "nope"): "no bank named 'nope'",
        ("match", not_image, "--bank", "nope"): "no bank named 'nope'",
        ("match", not_image, "--bank", "b", "--threshold", "500"): "params.threshold",
        ("jobs", "show", "0" * 32): "no job with id",
        ("faces", "search", not_image, "--gallery", "nope"): "no gallery named 'nope'",
    }
    for args, fragment in cases.items():
        code, out, err = fimg(*args)
        lines = err.strip().splitlines()
        assert code != 0, args
        assert "Traceback" not in err and len(lines) == 1, (args, err)
        assert lines[0].startswith("fimg: ") and fragment in lines[0], (args, err)
        assert out == "", (args, out)


def test_rejected_rows_and_files_are_listed_with_the_summary(fimg, tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text(f"record_id,md5\nr1,{'0' * 32}\nr2,nothex\n")
    code, out, err = fimg("bank", "import", "b", rows)
    assert code == 1 and out.strip() == '{"imported": 1, "rejected": 1}'
    assert err.strip().startswith(f"{rows}:3: md5 must be 32 hexadecimal characters")
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("just text")
    code, out, err = fimg("bank", "add", "b", not_image)
    assert code == 1 and out == ""
    assert err.splitlines() == ["fimg: none of the files is a usable image",
                                "  notes.jpg: the file is not an image (no known image format signature)"]


def test_with_auto_upgrade_off_an_old_schema_is_refused_naming_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FIMG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FIMG_DATABASE_URL", raising=False)
    monkeypatch.setenv("FIMG_AUTO_UPGRADE", "0")
    for command in (["bank", "list"], ["serve", "--port", "1"]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("fimg: ") and "`fimg db upgrade`" in err and len(err.splitlines()) == 1, err
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == "database schema: created\n"
    assert main(["bank", "list"]) == 0
