"""Results records: the schema, how callbacks contribute, the files, and which records a report uses.

* :mod:`~lightning_dims.records.schema`: :class:`ResultsRecord` (units and status in its docstring);
* :mod:`~lightning_dims.records.contributions`: :class:`RecordContributor` and the merge of payloads;
* :mod:`~lightning_dims.records.store`: atomic, never-overwritten files; one record per run id;
* :mod:`~lightning_dims.records.build`: a record from a finished (or stopped) Lightning run;
* :mod:`~lightning_dims.records.selection`: the records a report may pool, and why others are skipped.
"""

from lightning_dims.records.contributions import (
    RecordContributor,
    build_record,
    callback_fields,
    merge_fields,
    to_builtin,
)
from lightning_dims.records.schema import (
    RECORD_SUFFIX,
    Attempt,
    EvalMetrics,
    FGSMResult,
    ResultsRecord,
    RunStatus,
)
from lightning_dims.records.store import (
    CorruptRecordWarning,
    RecordExistsError,
    RecordState,
    inspect_record,
    is_finished,
    latest_per_run,
    move_aside,
    read_record,
    read_records,
    record_path,
    scan_records,
    write_record,
)

__all__ = [
    "RECORD_SUFFIX",
    "Attempt",
    "CorruptRecordWarning",
    "EvalMetrics",
    "FGSMResult",
    "RecordContributor",
    "RecordExistsError",
    "RecordState",
    "ResultsRecord",
    "RunStatus",
    "build_record",
    "callback_fields",
    "inspect_record",
    "is_finished",
    "latest_per_run",
    "merge_fields",
    "move_aside",
    "read_record",
    "read_records",
    "record_path",
    "scan_records",
    "to_builtin",
    "write_record",
]
