"""Report invalid pipeline specs (dags/pipelines/*.yaml) as this file's DAG import error.

dags/mlops_pipeline.py builds one Airflow DAG per valid spec and skips invalid ones. The error
is raised here, in a file that defines no DAG, because Airflow marks every DAG of a file with an
import error as stale: raised in mlops_pipeline.py it would stop every pipeline, not only the
broken one. The message names each invalid spec file and its field.
"""

from __future__ import annotations

from pathlib import Path

from sagemaker_mlops.specs import SpecError, load_specs, spec_dirs

_SPECS, _INVALID = load_specs(spec_dirs(base=Path(__file__).parent / "pipelines"))
if _INVALID:
    raise SpecError("invalid pipeline spec(s):\n" + "\n".join(_INVALID))
