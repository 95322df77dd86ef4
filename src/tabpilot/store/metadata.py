"""Jobs, candidates and their metrics in a relational database through SQLAlchemy.

SQLite in the workspace by default (WAL, so a `tabpilot stop` or `describe` in another
terminal reads while a job writes); PostgreSQL (`postgresql+psycopg://...`, by `--store` or
$TABPILOT_STORE, see `tabpilot.settings`) when several machines share one store. The SQL is
the same on both: no dialect-only statements, and a uniqueness race is caught by its
exception class (IntegrityError), never by its message. The schema is versioned by the
Alembic revisions in `store/migrations/`, applied when a store opens.

Paths inside the workspace (a job's folder, a candidate's model, an endpoint's model) are
stored relative to the workspace root and handed out absolute, so a workspace opened from
another folder, by another path, or moved whole, still finds its models. Rows written by
an older tabpilot hold absolute paths; those are handed out as they are.

A job that ends (Completed, Failed, Stopped) closes, in the same transaction, every one of
its candidates still InProgress: no path of the job's end can leave one running.

A database server that goes away (a PostgreSQL restart, a failover) is waited for
(`store/retry.py`): a job's writers ride out a restart and never hang.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    and_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tabpilot.errors import (
    JobExistsError,
    NotFoundError,
    ResourceExistsError,
    StoreUnavailableError,
)
from tabpilot.settings import DATABASE_FILE, Backends
from tabpilot.store import migrations
from tabpilot.store.engines import engine_for
from tabpilot.store.retry import first_line, retry_public_methods

log = logging.getLogger("tabpilot.store")

ACTIVE = ("InProgress", "Stopping")
ENDED = ("Completed", "Failed", "Stopped")
CANDIDATE_STOPPED_REASON = "stopped when the job ended"
CANDIDATE_FAILED_REASON = "the job failed before this candidate finished"


class Base(DeclarativeBase):
    pass


class JobRow(Base):
    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    secondary_status: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(256))
    input_uri: Mapped[str] = mapped_column(Text)
    problem_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metric: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mode: Mapped[str] = mapped_column(String(16), default="hpo")
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_dir: Mapped[str] = mapped_column(Text)
    best_candidate: Mapped[str | None] = mapped_column(String(128), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the machine `pid` runs on: a pid means nothing elsewhere (liveness is `heartbeat`)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created: Mapped[float] = mapped_column(Float)
    modified: Mapped[float] = mapped_column(Float)
    ended: Mapped[float | None] = mapped_column(Float, nullable=True)
    # when the job's process last said it was alive (None: no process has started yet)
    heartbeat: Mapped[float | None] = mapped_column(Float, nullable=True)


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (ForeignKeyConstraint(["job"], ["jobs.name"], ondelete="CASCADE"),)

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(32))
    family: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16), default="tpe")
    status: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    fit_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms_p50: Mapped[float | None] = mapped_column(Float, nullable=True)
    throughput_rows_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    artifact_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    trained_on: Mapped[str] = mapped_column(String(16), default="train")
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[float] = mapped_column(Float)
    ended: Mapped[float | None] = mapped_column(Float, nullable=True)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (ForeignKeyConstraint(["job", "candidate"],
                                           ["candidates.job", "candidates.name"],
                                           ondelete="CASCADE"),)

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    candidate: Mapped[str] = mapped_column(String(128), primary_key=True)
    split: Mapped[str] = mapped_column(String(16), primary_key=True)  # validation | test
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)


class EndpointRow(Base):
    """A named endpoint and the model it serves; servers load it from here."""

    __tablename__ = "endpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_dir: Mapped[str] = mapped_column(Text)
    job: Mapped[str | None] = mapped_column(String(64), nullable=True)
    candidate: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="InService")
    capture_percent: Mapped[float] = mapped_column(Float, default=0.0)
    output_keys: Mapped[str | None] = mapped_column(String(128), nullable=True)
    capture_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(63), nullable=True)  # capture's level
    version: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[float] = mapped_column(Float)
    modified: Mapped[float] = mapped_column(Float)


class ResourceRow(Base):
    """A SageMaker-API resource without a table of its own (model, endpoint config,
    transform job, the AutoML job's original request): its request as JSON and a status."""

    __tablename__ = "resources"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[float] = mapped_column(Float)
    modified: Mapped[float] = mapped_column(Float)
    ended: Mapped[float | None] = mapped_column(Float, nullable=True)


class Store:
    """The metadata store of one workspace (or one database URL)."""

    def __init__(self, url: str, root: Path | None = None) -> None:
        """`root`: the workspace that stored paths are relative to (for a SQLite file,
        the folder that holds it unless given). Opening brings the schema up to date."""
        self.url = url
        self.root = root.resolve() if root is not None else _sqlite_folder(url)
        self.engine = engine_for(url)
        try:
            migrations.upgrade(self.engine)
        except OperationalError as exc:
            if self.engine.dialect.name == "sqlite":
                raise  # a local file: the traceback says more than a line could
            raise StoreUnavailableError(
                f"cannot open the store {self.shown_url}: {first_line(exc.orig)}; "
                "start the database or fix --store / $TABPILOT_STORE") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.engine.dialect.name != "sqlite":
            log.info("metadata store: %s", self.shown_url)

    @classmethod
    def for_workspace(cls, workspace: Path, create: bool = True, url: str | None = None) -> Store:
        """The workspace's store: the one `url` names, else $TABPILOT_STORE's, else the
        workspace's SQLite file (`tabpilot.settings`, the one place this is decided).
        Without `create`, a workspace that has no database file yet reads as an empty
        store in memory and is left as it was: looking up a job, or a run refused for bad
        input, must not leave an empty workspace behind."""
        chosen = Backends.resolve(url).store
        if chosen is not None:
            return cls(chosen, workspace)
        if not create and not (workspace / DATABASE_FILE).is_file():
            return cls("sqlite://")
        workspace.mkdir(parents=True, exist_ok=True)
        return cls(Backends().store_url(workspace), workspace)

    @property
    def shown_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    # -- paths: stored relative to the workspace, handed out absolute ------------------
    def stored_path(self, path: str | Path | None) -> str | None:
        """How a path is stored: relative to the workspace root when inside it."""
        if path is None or self.root is None or "://" in str(path):
            return None if path is None else str(path)
        absolute = Path(os.path.abspath(path))
        for candidate in (absolute, absolute.resolve()):
            if candidate.is_relative_to(self.root):
                return candidate.relative_to(self.root).as_posix() or "."
        return str(absolute)

    def absolute_path(self, stored: str | None) -> str | None:
        """A stored path as a usable one: relative ones are under the workspace root."""
        if stored is None or self.root is None or "://" in stored or Path(stored).is_absolute():
            return stored
        return str(self.root / stored)

    def _stored_fields(self, fields: dict[str, Any], *names: str) -> dict[str, Any]:
        return {k: self.stored_path(v) if k in names else v for k, v in fields.items()}

    def _out(self, row: Any) -> Any:
        """A row read from the database, with its paths absolute (it is detached: setting
        them writes nothing)."""
        if row is not None:
            for attr in _PATHS.get(type(row), ()):
                setattr(row, attr, self.absolute_path(getattr(row, attr)))
        return row

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s, s.begin():
            yield s

    # -- jobs ----------------------------------------------------------------------
    def job_exists(self, name: str) -> bool:
        with self.session() as s:
            return s.get(JobRow, name) is not None

    def ensure_new_job(self, name: str) -> None:
        if self.job_exists(name):
            raise _job_exists(name)

    def create_job(self, **fields: Any) -> JobRow:
        """A new job row. Without a `heartbeat`, no process runs it yet: liveness checks
        then count from its creation (with the longer grace of a process starting)."""
        now = time.time()
        row = JobRow(created=now, modified=now, stats={},
                     **self._stored_fields(self._with_host(fields), "job_dir"))
        try:
            with self.session() as s:
                s.add(row)
        except IntegrityError:  # created by another process since ensure_new_job
            raise _job_exists(fields["name"]) from None
        return self._out(row)

    def get_job(self, name: str) -> JobRow:
        with self.session() as s:
            row = s.get(JobRow, name)
        if row is None:
            raise NotFoundError(f"no job named {name!r} in this workspace; "
                                "`tabpilot list` shows the jobs")
        return self._out(row)

    def list_jobs(self) -> list[JobRow]:
        with self.session() as s:
            rows = list(s.scalars(select(JobRow).order_by(JobRow.created.desc())))
        return [self._out(r) for r in rows]

    def update_job(self, name: str, **fields: Any) -> None:
        """Update a job; a `status` that ends it (Completed, Failed, Stopped) also closes
        its candidates still InProgress, as Stopped with the reason why."""
        fields = self._with_host(fields)
        with self.session() as s:
            s.execute(update(JobRow).where(JobRow.name == name)
                      .values(modified=time.time(), **self._stored_fields(fields, "job_dir")))
            if fields.get("status") in ENDED:
                _close_candidates(s, name, CANDIDATE_FAILED_REASON
                                  if fields["status"] == "Failed" else CANDIDATE_STOPPED_REASON)

    def beat(self, name: str) -> None:
        """The job's process is alive (its heartbeat)."""
        with self.session() as s:
            s.execute(update(JobRow).where(JobRow.name == name).values(heartbeat=time.time()))

    def _with_host(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A pid is recorded with the machine it belongs to (unless the caller says)."""
        if fields.get("pid") is not None and "host" not in fields:
            return {**fields, "host": socket.gethostname()}
        return fields

    def fail_silent_job(self, name: str, beat_before: float, start_before: float,
                        reason: str) -> bool:
        """Mark an active job Failed if its last heartbeat is older than `beat_before` (or,
        never having beaten, it was created before `start_before`), closing its InProgress
        candidates. Atomic: of several readers, one marks it. True if this call did."""
        now = time.time()
        silent = or_(and_(JobRow.heartbeat.is_not(None), JobRow.heartbeat < beat_before),
                     and_(JobRow.heartbeat.is_(None), JobRow.created < start_before))
        with self.session() as s:
            done = s.execute(update(JobRow)
                             .where(JobRow.name == name, JobRow.status.in_(ACTIVE), silent)
                             .values(status="Failed", secondary_status="Failed",
                                     failure_reason=reason, ended=now, modified=now))
            if done.rowcount != 1:
                return False
            _close_candidates(s, name, reason)
        return True

    def reopen_job(self, name: str, **fields: Any) -> bool:
        """Set a Failed or Stopped job InProgress again (to resume it); False when it is not
        in one of those states (another process resumed it, or it runs or completed)."""
        now = time.time()
        with self.session() as s:
            done = s.execute(update(JobRow)
                             .where(JobRow.name == name, JobRow.status.in_(("Failed", "Stopped")))
                             .values(status="InProgress", failure_reason=None, ended=None,
                                     heartbeat=now, modified=now,
                                     **self._stored_fields(fields, "job_dir")))
            return done.rowcount == 1

    def delete_job(self, name: str) -> None:
        with self.session() as s:
            row = s.get(JobRow, name)
            if row is not None:
                s.delete(row)

    def request_stop(self, name: str) -> JobRow:
        """Mark an in-progress job Stopping; the job's own process ends it as Stopped."""
        job = self.get_job(name)
        if job.status == "InProgress":
            with self.session() as s:
                s.execute(update(JobRow).where(JobRow.name == name, JobRow.status == "InProgress")
                          .values(status="Stopping", modified=time.time()))
        return self.get_job(name)

    # -- candidates ----------------------------------------------------------------
    def add_candidate(self, **fields: Any) -> None:
        with self.session() as s:
            s.add(CandidateRow(created=time.time(), **self._stored_fields(fields, "artifact_dir")))

    def update_candidate(self, job: str, name: str, metrics: dict[str, float] | None = None,
                         split: str = "validation", **fields: Any) -> None:
        with self.session() as s:
            if fields:
                s.execute(update(CandidateRow)
                          .where(CandidateRow.job == job, CandidateRow.name == name)
                          .values(**self._stored_fields(fields, "artifact_dir")))
            for metric, value in (metrics or {}).items():
                s.merge(MetricRow(job=job, candidate=name, split=split, name=metric,
                                  value=value))

    def list_candidates(self, job: str) -> list[CandidateRow]:
        with self.session() as s:
            rows = list(s.scalars(select(CandidateRow).where(CandidateRow.job == job)
                                  .order_by(CandidateRow.number)))
        return [self._out(r) for r in rows]

    def get_candidate(self, job: str, name: str) -> CandidateRow:
        with self.session() as s:
            row = s.get(CandidateRow, (job, name))
        if row is None:
            raise NotFoundError(f"job {job!r} has no candidate {name!r}; "
                                f"`tabpilot candidates {job}` lists them")
        return self._out(row)

    # -- endpoints ----------------------------------------------------------------------
    def put_endpoint(self, name: str, model_dir: str, **fields: Any) -> EndpointRow:
        """Create an endpoint, or point an existing one at another model (a new version)."""
        now = time.time()
        model_dir = self.stored_path(model_dir) or model_dir
        with self.session() as s:
            row = s.get(EndpointRow, name)
            if row is None:
                row = EndpointRow(name=name, model_dir=model_dir, created=now, modified=now,
                                  version=1, **fields)
                s.add(row)
            else:
                row.model_dir, row.modified, row.version = model_dir, now, row.version + 1
                for key, value in fields.items():
                    setattr(row, key, value)
        return self.get_endpoint(name)

    def get_endpoint(self, name: str) -> EndpointRow:
        with self.session() as s:
            row = s.get(EndpointRow, name)
        if row is None:
            raise NotFoundError(f"no endpoint named {name!r}; `tabpilot endpoints` lists them")
        return self._out(row)

    def list_endpoints(self) -> list[EndpointRow]:
        with self.session() as s:
            rows = list(s.scalars(select(EndpointRow).order_by(EndpointRow.name)))
        return [self._out(r) for r in rows]

    def delete_endpoint(self, name: str) -> None:
        self.get_endpoint(name)
        with self.session() as s:
            s.delete(s.get(EndpointRow, name))

    # -- other resources (the SageMaker API's models, endpoint configs, transform jobs) ----
    def add_resource(self, kind: str, name: str, spec: dict[str, Any],
                     status: str | None = None) -> ResourceRow:
        now = time.time()
        row = ResourceRow(kind=kind, name=name, spec=spec, status=status, created=now,
                          modified=now)
        try:
            with self.session() as s:
                s.add(row)
        except IntegrityError:
            raise ResourceExistsError(f"a {kind} named {name!r} already exists") from None
        return row

    def get_resource(self, kind: str, name: str) -> ResourceRow:
        with self.session() as s:
            row = s.get(ResourceRow, (kind, name))
        if row is None:
            raise NotFoundError(f"no {kind} named {name!r}")
        return row

    def find_resource(self, kind: str, name: str) -> ResourceRow | None:
        with self.session() as s:
            return s.get(ResourceRow, (kind, name))

    def list_resources(self, kind: str) -> list[ResourceRow]:
        with self.session() as s:
            return list(s.scalars(select(ResourceRow).where(ResourceRow.kind == kind)
                                  .order_by(ResourceRow.created)))

    def update_resource(self, kind: str, name: str, **fields: Any) -> None:
        with self.session() as s:
            s.execute(update(ResourceRow)
                      .where(ResourceRow.kind == kind, ResourceRow.name == name)
                      .values(modified=time.time(), **fields))

    def delete_resource(self, kind: str, name: str) -> None:
        self.get_resource(kind, name)
        with self.session() as s:
            s.delete(s.get(ResourceRow, (kind, name)))

    def metrics(self, job: str) -> dict[str, dict[str, dict[str, float | None]]]:
        """{candidate: {split: {metric: value}}}"""
        out: dict[str, dict[str, dict[str, float | None]]] = {}
        with self.session() as s:
            for m in s.scalars(select(MetricRow).where(MetricRow.job == job)):
                out.setdefault(m.candidate, {}).setdefault(m.split, {})[m.name] = m.value
        return out


retry_public_methods(Store)


_PATHS: dict[type, tuple[str, ...]] = {JobRow: ("job_dir",), CandidateRow: ("artifact_dir",),
                                        EndpointRow: ("model_dir",)}


def _sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite database file (None for other databases, or in memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(url[len(prefix):].split("?")[0]).resolve().parent


def _close_candidates(s: Session, job: str, reason: str) -> None:
    """The job ended: its candidates still InProgress will never finish."""
    s.execute(update(CandidateRow)
              .where(CandidateRow.job == job, CandidateRow.status == "InProgress")
              .values(status="Stopped", failure_reason=reason, ended=time.time()))


def _job_exists(name: str) -> JobExistsError:
    return JobExistsError(f"a job named {name!r} already exists in this workspace; "
                          "choose another --name")
