"""Sharing through DVC remotes: pull, then name every output the remote lacked and the stage that makes it."""

from __future__ import annotations

from dataclasses import dataclass

from mcqflow.core.errors import UserError


@dataclass
class Missing:
    path: str
    stage: str

    def line(self) -> str:
        return (
            f"{self.path}: not in the remote; produce it with `dvc repro {self.stage}` "
            f"(or ask whoever has it to `dvc push`)"
        )


def pull(remote: str | None = None, repo_dir: str = ".") -> list[Missing]:
    """`dvc pull` everything it can, then report outputs still missing from the workspace."""
    from dvc.config import NoRemoteError
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(repo_dir) as repo:
            if remote is None and not repo.config["core"].get("remote"):
                raise NoRemoteError("no default remote")  # pull(allow_missing=True) would not say so
            repo.pull(remote=remote, allow_missing=True)
            status = repo.status()
    except NoRemoteError:
        raise UserError(
            "no DVC remote is set: `make remote REMOTE=/path/to/shared/folder`, "
            "or `dvc remote add --local -d NAME URL`"
        ) from None
    except DvcException as e:
        raise UserError(f"dvc pull failed: {str(e).splitlines()[0]}") from None
    missing = []
    for stage, changes in status.items():
        for change in changes:
            if isinstance(change, dict):
                for path, state in change.get("changed outs", {}).items():
                    if state in ("deleted", "not in cache"):
                        missing.append(Missing(path, stage))
    return missing
