import json
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("MEDSEARCH_SHARED", ROOT.parent / "shared")) / "data"
CLI = pathlib.Path(os.environ.get("MEDSEARCH_CLI", ROOT / "build" / "bin" / "medsearch"))


@pytest.fixture(scope="session")
def shared():
    if not (SHARED / "nci-pdq").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def pdq_index(shared):
    import medsearch

    return medsearch.Index.build({"nci-pdq": shared / "nci-pdq"})


@pytest.fixture()
def small_corpus(tmp_path):
    """A Markdown tree and a BEIR corpus, written here."""
    md = tmp_path / "guides" / "types"
    md.mkdir(parents=True)
    (md / "meso-hp.md").write_text(
        "---\n"
        "title: Mesothelioma Treatment (PDQ®) - NCI\n"
        "url: https://www.cancer.gov/types/mesothelioma/hp/meso-pdq\n"
        "lastReviewed: '2025-12-30'\n"
        "tags:\n- pdq\n- treatment\n"
        "---\n\n"
        "# Mesothelioma Treatment (PDQ®)–Health Professional Version\n\n"
        "## Treatment of Recurrent Malignant Mesothelioma\n\n"
        "Second-line options include [gemcitabine with ramucirumab](/x#_1), nivolumab and vinorelbine."
        "[[1](#cit/section_7.1)]\n\n"
        "## Stage Information\n\nStaging uses the TNM system.\n",
        encoding="utf-8",
    )
    (md / "meso-patient.md").write_text(
        "---\n"
        "title: Mesothelioma Treatment (PDQ®) - NCI\n"
        "url: https://www.cancer.gov/types/mesothelioma/patient/meso-pdq\n"
        "lastReviewed: '2023-05-01'\n"
        "---\n\n"
        "# Mesothelioma Treatment (PDQ®)–Patient Version\n\n"
        "## Recurrent Mesothelioma\n\nIf the cancer comes back, treatment may include a clinical trial.\n",
        encoding="utf-8",
    )
    beir = tmp_path / "papers"
    beir.mkdir()
    with open(beir / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, (title, text) in enumerate(
            [
                ("Nivolumab in relapsed mesothelioma", "A randomised trial of nivolumab versus placebo after platinum."),
                ("Aspirin and colorectal cancer", "Daily aspirin reduced colorectal adenoma recurrence."),
                ("PD-L1 expression in NSCLC", "PD-L1 ≥50% predicted response to pembrolizumab."),
            ]
        ):
            f.write(json.dumps({"_id": f"p{i}", "title": title, "text": text, "meta": {"year": 2020 + i}}) + "\n")
    return {"guides": tmp_path / "guides", "papers": beir}
