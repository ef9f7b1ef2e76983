"""A dataset is a folder, named by `data.source` in params.yaml; its `dataset.yaml` says how to read it.

`dataset.yaml` (all keys optional):

    name: gaokao
    format: files | gaokao-bench   # files: one file per split, any format mcqflow.data.ingest reads
    script: hant | hans            # the Chinese script the validate gate expects
    split_by: files | year         # year: train / dev / test by exam year (data.years)
    langs:
      zh: {train: train.csv, dev: dev.csv, test: test.csv}   # format files
      en: {train: en/train.jsonl, ...}
      # format gaokao-bench: zh: [file.json, ...] (every row carries its year)

A folder without `dataset.yaml` is read as `format: files` with `train.*`, `dev.*`, `test.*` (Chinese)
and `en/train.*` ... (English, when present). A language the dataset does not have is skipped downstream,
visibly (mcqflow.core.skip), never filled with a copy of another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mcqflow.core.errors import UserError

FORMATS = ("files", "gaokao-bench")
SCRIPTS = ("hant", "hans")
SPLITS = ("train", "dev", "test")
_KEYS = ("name", "format", "script", "split_by", "langs")


@dataclass
class Dataset:
    folder: Path
    name: str
    format: str = "files"
    script: str = "hant"
    split_by: str = "files"
    langs: dict = field(default_factory=dict)  # lang -> {split: path} (files) or [paths] (gaokao-bench)

    def has(self, lang: str) -> bool:
        return lang in self.langs

    def files(self, lang: str) -> list[Path]:
        v = self.langs[lang]
        return [Path(p) for p in (v.values() if isinstance(v, dict) else v)]


def load_dataset(source: str | Path) -> Dataset:
    folder = Path(source)
    if not folder.is_dir():
        raise UserError(f"data.source={str(source)!r}: not a folder (data/sample, data/gaokao or your own)")
    manifest = folder / "dataset.yaml"
    if not manifest.exists():
        return _guess(folder)
    try:
        d = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{manifest}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise UserError(f"{manifest}: expected a mapping")
    unknown = sorted(set(d) - set(_KEYS))
    if unknown:
        raise UserError(f"{manifest}: unknown key {unknown[0]!r}; known: {', '.join(_KEYS)}")
    ds = Dataset(
        folder,
        str(d.get("name") or folder.name),
        d.get("format", "files"),
        d.get("script", "hant"),
        d.get("split_by", "year" if d.get("format") == "gaokao-bench" else "files"),
    )
    for key, allowed in (("format", FORMATS), ("script", SCRIPTS), ("split_by", ("files", "year"))):
        if getattr(ds, key) not in allowed:
            raise UserError(f"{manifest}: {key}: {getattr(ds, key)!r}: expected one of {' | '.join(allowed)}")
    if ds.format == "files" and ds.split_by != "files":
        raise UserError(f"{manifest}: split_by: year needs format: gaokao-bench (rows that carry a year)")
    langs = d.get("langs") or {}
    if not isinstance(langs, dict) or not langs:
        raise UserError(f"{manifest}: langs: expected a mapping of languages to files")
    for lang, v in langs.items():
        if ds.format == "files":
            if not isinstance(v, dict) or sorted(v) != sorted(SPLITS):
                raise UserError(f"{manifest}: langs.{lang}: expected {{train: ..., dev: ..., test: ...}}")
            ds.langs[lang] = {s: _existing(manifest, folder / v[s]) for s in SPLITS}
        else:
            if not isinstance(v, list) or not v:
                raise UserError(f"{manifest}: langs.{lang}: expected a list of {ds.format} files")
            ds.langs[lang] = [_existing(manifest, folder / p) for p in v]
    return ds


def _existing(manifest: Path, path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{manifest}: {path}: file not found")
    return path


def _guess(folder: Path) -> Dataset:
    ds = Dataset(folder, folder.name)
    for lang, sub in (("zh", folder), ("en", folder / "en")):
        found = {s: sorted(p for p in sub.glob(f"{s}.*") if p.is_file()) for s in SPLITS}
        if not any(found.values()):
            continue
        for s, paths in found.items():
            if len(paths) != 1:
                what = "no" if not paths else f"{len(paths)}"
                raise UserError(
                    f"{sub}: {what} {s}.* file(s); put one per split there, or describe the folder in "
                    f"{folder / 'dataset.yaml'} (mcqflow.data.datasets)"
                )
        ds.langs[lang] = {s: found[s][0] for s in SPLITS}
    if not ds.langs:
        raise UserError(f"{folder}: no train.*, dev.*, test.* files and no dataset.yaml")
    return ds


def split_of_year(year: str | None, years: dict) -> str | None:
    """The split an exam year belongs to under `data.years` ({split: [first, last]}), or None."""
    try:
        y = int(str(year))
    except (TypeError, ValueError):
        return None
    for split in SPLITS:
        lo, hi = years[split]
        if lo <= y <= hi:
            return split
    return None
