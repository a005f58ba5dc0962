"""docs/deploy.md's service-account table: generated from the Terraform, and current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

from .hcl import ROOT

SCRIPT = ROOT / "scripts" / "iam_table.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iam_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_docs_table_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_table_lists_every_grant_of_every_account() -> None:
    iam_table = _script()
    for env in ("dev", "staging", "prod"):
        grants = iam_table.grants(iam_table.Environment(env))
        by_identity: dict[str, set[str]] = {}
        for g in grants:
            by_identity.setdefault(g.identity, set()).add(f"{g.what} on {g.on}")
        assert set(by_identity) == {
            "cosma-fn-auth",
            "cosma-fn-oauth",
            "cosma-fn-datasets",
            "cosma-fn-query",
            "cosma-fn-sync",
            "cosma-fn-directory",
            "cosma-scheduler",
            "cosma-build",
            "allUsers",
            iam_table.BIGQUERY_AGENT,
            iam_table.STORAGE_AGENT,
        }
        assert by_identity[iam_table.STORAGE_AGENT] == {
            "`roles/cloudkms.cryptoKeyEncrypterDecrypter` on "
            "the Cloud KMS key `bigquery_kms_key_name`, when it is set"
        }
        writers = {g.identity for g in grants if g.on == "export bucket"}
        assert writers == {"cosma-fn-datasets"}
        assert by_identity[iam_table.BIGQUERY_AGENT] == {
            "`roles/cloudkms.cryptoKeyEncrypterDecrypter` on "
            "the Cloud KMS key `bigquery_kms_key_name`, when it is set"
        }
        assert by_identity["cosma-scheduler"] == {
            "`roles/run.invoker`, from internal callers only on function `sync`"
        }
        public = {g.on for g in grants if g.identity == "allUsers"}
        assert public == {
            f"function `{n}`" for n in ("auth", "oauth", "datasets", "query", "directory")
        }
        directory_secrets = (
            "clerk-secret-key",
            "clerk-webhook-secret",
            "directory-database-url",
            "sentry-dsn",
            # Erasing a deleted organization's clients revokes their grants first.
            "fernet-keyring",
            *(
                f"{p}-client-secret"
                for p in ("google-ads", "meta", "linkedin", "tiktok", "microsoft")
            ),
        )
        assert by_identity["cosma-fn-directory"] == {
            *(
                f"`roles/secretmanager.secretAccessor` on secret `cosma-{s}`"
                for s in directory_secrets
            ),
            "custom role `cosmaDatasetEraser`: `bigquery.datasets.delete`,"
            " `bigquery.tables.delete` on project",
        }
        assert "dataset access `READER` on each client dataset" in by_identity["cosma-fn-query"]
        assert "dataset access `WRITER` on each client dataset" in by_identity["cosma-fn-sync"]


def test_stale_table_is_detected(tmp_path, monkeypatch) -> None:
    iam_table = _script()
    doc = tmp_path / "deploy.md"
    doc.write_text(f"intro\n{iam_table.BEGIN}\n| old |\n{iam_table.END}\nrest\n")
    monkeypatch.setattr(iam_table, "DOC", doc)
    monkeypatch.setattr(iam_table, "ROOT", tmp_path)
    assert iam_table.main(["--check"]) == 1
    assert iam_table.main([]) == 0
    assert iam_table.main(["--check"]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n")
    assert "| `cosma-fn-sync` |" in text
